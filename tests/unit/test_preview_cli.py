import json
import subprocess
import sys

from core.catalogue import CATALOGUE
from flowmail.samples import example


def flowmail(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "flowmail", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_list_names_every_type():
    result = flowmail("preview", "--list")
    assert result.returncode == 0 and len(result.stdout.splitlines()) == len(CATALOGUE)


def test_preview_prints_subject_text_and_html():
    result = flowmail("preview", "welcome", "--locale", "fr")
    assert result.returncode == 0
    assert result.stdout.startswith("Subject: Bienvenue chez Nordlicht Outdoor")
    assert "<html" in result.stdout


def test_preview_with_own_data_and_out_dir(tmp_path):
    event = example("support.replied")
    event["customer"]["first_name"] = "<b>Zoë</b>"
    data = tmp_path / "event.json"
    data.write_text(json.dumps(event))
    result = flowmail("preview", "support_response", "--locale", "it", "--data", str(data),
                      "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "out" / "body.html").read_text()
    assert "&lt;b&gt;Zoë&lt;/b&gt;" in html and "Ciao" in html


def test_bad_type_locale_and_data_are_clear_errors(tmp_path):
    assert "unknown email type" in flowmail("preview", "newsletter").stderr
    assert "not one of" in flowmail("preview", "invoice", "--locale", "xx").stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"event_id": "x"}))
    result = flowmail("preview", "invoice", "--data", str(bad))
    assert result.returncode != 0 and "schema_mismatch" in result.stderr


def test_every_type_previews_in_every_locale():
    from click.testing import CliRunner

    from core.catalogue import EmailType
    from flowmail.cli import main
    from processors.locales import SUPPORTED
    runner = CliRunner()
    for email_type in EmailType:
        for locale in SUPPORTED:
            result = runner.invoke(main, ["preview", email_type.value, "--locale", locale])
            assert result.exit_code == 0, (email_type, locale, result.output)
            assert result.output.startswith("Subject: ") and "<html" in result.output
