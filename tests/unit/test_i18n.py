"""Catalogs are complete and current, and non-English mail has no English left in it."""

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from core.catalogue import EmailType
from flowmail.samples import SAMPLES, campaign_launched, user_created
from processors.locales import SUPPORTED
from processors.profiles import profile_from_user_created
from processors.rendering import Renderer
from processors.routing import fan_out_campaign, route

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "templates" / "locale"
TRANSLATED = [loc for loc in SUPPORTED if loc != "en"]


def catalog(path):
    with open(path, "rb") as handle:
        return read_po(handle)


def ids(cat):
    return {m.id for m in cat if m.id}


@pytest.fixture(scope="module")
def fresh_template(tmp_path_factory):
    """Extract the strings the templates and code use right now."""
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    "babel.cfg", "-k", "N_", "--no-location", "--omit-header", "-o", str(out),
                    "."], cwd=ROOT, check=True, capture_output=True)
    return catalog(out)


def test_committed_pot_is_current(fresh_template):
    assert ids(fresh_template) == ids(catalog(LOCALE_DIR / "messages.pot")), (
        "run: pybabel extract -F babel.cfg -k N_ --no-location --omit-header "
        "-o templates/locale/messages.pot . and translate the new strings")


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_string_is_translated(fresh_template, locale):
    cat = catalog(LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po")
    missing = ids(fresh_template) - {m.id for m in cat if m.id and m.string and all(m.string)}
    assert not missing, f"{locale} lacks {sorted(map(str, missing))[:5]}"
    for message in cat:
        if not message.id:
            continue
        source = " ".join(message.id) if isinstance(message.id, tuple) else message.id
        target = " ".join(message.string) if isinstance(message.string, tuple) else message.string
        for placeholder in set(re.findall(r"%\(\w+\)[sd]", source)):
            assert placeholder in target, f"{locale}: {placeholder} lost in {message.id!r}"


def test_plural_forms_follow_the_count():
    renderer = Renderer()
    now = dt.datetime.now(dt.UTC)
    for locale_index, one, many in [(1, "1 Artikel.", "3 Artikel."),
                                    (2, "1 article.", "3 articles.")]:
        event = SAMPLES["order.placed"](locale_index, now)
        [command] = route("order.placed", event, 1, 1)
        command.template_data["items"] = [dict(command.template_data["items"][0], quantity=1)]
        assert one in renderer.render(command).text
        command.template_data["items"] = [dict(command.template_data["items"][0], quantity=3)]
        assert many in renderer.render(command).text


ENGLISH = ["Thank you", "Your order", "Subtotal", "Shipping", "Total", "Track your",
           "Questions?", "Welcome", "password", "Invoice", "Please pay", "Unsubscribe",
           "You wrote", "here is", "Hello", "Activate", "ignore this email", "On its way",
           "Out for delivery", "support"]


# the same word in the target language, not a leak
COGNATES = {"fr": {"Total"}, "es": {"Total", "Subtotal"}, "pt_BR": {"Total", "Subtotal"},
            "it": {"password"}, "de": set(), "ja": set(), "zh_Hans": set()}


def all_commands(locale_index):
    now = dt.datetime.now(dt.UTC)
    ms = int(now.timestamp() * 1000)
    out = []
    for topic, sample in SAMPLES.items():
        out += route(topic, sample(locale_index, now), ms, ms)
    profile = profile_from_user_created(user_created(locale_index, now), 0)
    out += fan_out_campaign(campaign_launched(now=now), "campaign.launched",
                            [{**profile, "marketing_opt_in": True}], ms, ms, b"s")[0]
    return out


def strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.mark.parametrize("locale_index", range(1, 8), ids=lambda i: SUPPORTED[i])
def test_no_english_leaks_into_translated_mail(locale_index):
    renderer = Renderer()
    for command in all_commands(locale_index):
        if command.email_type is EmailType.MARKETING_CAMPAIGN:
            continue  # campaign copy is the shop's own text, in whatever language it wrote
        if command.locale != SUPPORTED[locale_index]:
            continue  # a shipment without a profile is rightly English
        rendered = renderer.render(command)
        data = sorted(strings(command.template_data), key=len, reverse=True)
        for text in (rendered.subject, rendered.text):
            for value in data:  # names, products, URLs and replies are data, not template
                text = text.replace(value, "")
            for word in set(ENGLISH) - COGNATES[command.locale]:
                assert not re.search(rf"\b{re.escape(word)}\b", text), (
                    command.email_type, command.locale, word)


def test_unsupported_locale_falls_back_to_english_and_reports_it():
    seen = []
    renderer = Renderer(on_locale_fallback=seen.append)
    [command] = route("order.placed", SAMPLES["order.placed"](1, dt.datetime.now(dt.UTC)), 1, 1)
    object.__setattr__(command, "locale", "ko")
    assert renderer.render(command).subject.startswith("Your order")
    assert seen == ["ko"]
