"""The worker's preview page, loaded in a real headless Chromium (Debian's chromium)."""

import shutil
import subprocess
from pathlib import Path

import pytest
import requests

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


def chromium(tmp_path, *args):
    assert CHROMIUM, "chromium is not installed: .ci/run installs Debian's chromium package"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("email_type", "locale", "expected", "body"), [
    ("order_confirmation", "de", "Ihre Bestellung SF-100234 bei Nordlicht Outdoor",
     "Vielen Dank für Ihre Bestellung, Lena!"),
    ("password_reset", "ja", "Nordlicht Outdoor のパスワード再設定", "パスワードの再設定"),
])
def test_preview_renders_in_headless_chromium(worker, settings, tmp_path, email_type, locale,
                                              expected, body):
    url = f"http://127.0.0.1:{settings.web_port}/preview/{email_type}/?locale={locale}"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'<h1 id="subject">{expected}</h1>' in dom.stdout
    assert 'id="html-part"' in dom.stdout and 'id="text-part"' in dom.stdout
    frame = chromium(tmp_path, "--dump-dom", url.replace("/?", "/html/?"))
    assert body in frame.stdout and f'lang="{locale.replace("_", "-")}"' in frame.stdout
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"preview-{email_type}-{locale}.png"
    shot.unlink(missing_ok=True)
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1000", url)
    assert result.returncode == 0 and shot.stat().st_size > 10_000  # a real, non-blank image


def test_preview_page_refuses_unknown_types_and_locales(worker, settings):
    base = f"http://127.0.0.1:{settings.web_port}/preview"
    assert requests.get(f"{base}/no_such_type/", timeout=10).status_code == 404
    assert requests.get(f"{base}/invoice/?locale=xx", timeout=10).status_code == 404


def test_every_type_previews_in_every_locale_on_the_page(worker, settings):
    from core.catalogue import EmailType
    from processors.locales import SUPPORTED
    base = f"http://127.0.0.1:{settings.web_port}/preview"
    for email_type in EmailType:
        for locale in SUPPORTED:
            page = requests.get(f"{base}/{email_type.value}/?locale={locale}", timeout=30)
            assert page.status_code == 200, (email_type, locale, page.text[:300])
            assert '<h1 id="subject">' in page.text
            frame = requests.get(f"{base}/{email_type.value}/html/?locale={locale}", timeout=30)
            assert frame.status_code == 200 and "<html" in frame.text, (email_type, locale)
