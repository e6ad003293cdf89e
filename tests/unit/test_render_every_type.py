"""Every email type renders from the shipped sample data: subject, HTML and text."""

import datetime as dt

import pytest

from flowmail.samples import SAMPLES, campaign_launched, user_created
from flowmail.vocab import EmailType
from processors.message import build_message
from processors.profiles import profile_from_user_created
from processors.rendering import Renderer
from processors.routing import fan_out_campaign, route

NOW_DT = dt.datetime.now(dt.UTC)
NOW = int(NOW_DT.timestamp() * 1000)
RENDERER = Renderer()


def commands():
    found = {}
    for topic, sample in SAMPLES.items():
        for index in range(8):
            for command in route(topic, sample(index, NOW_DT), NOW, NOW):
                found[(command.email_type, command.locale)] = command
    everyone = [profile_from_user_created(user_created(i, NOW_DT), 0) for i in range(8)]
    marketing, _ = fan_out_campaign(campaign_launched(now=NOW_DT), "campaign.launched",
                                    everyone, NOW, NOW, b"s")
    for command in marketing:
        found[(command.email_type, command.locale)] = command
    return found


ALL = commands()


def test_every_type_is_covered():
    assert {t for t, _ in ALL} == set(EmailType)


@pytest.mark.parametrize("key", sorted(ALL), ids=[f"{t.value}-{loc}" for t, loc in sorted(ALL)])
def test_renders(key):
    command = ALL[key]
    rendered = RENDERER.render(command)
    assert rendered.subject and "\n" not in rendered.subject
    assert "<html" in rendered.html and "Nordlicht Outdoor" in rendered.html
    assert "Nordlicht Outdoor" in rendered.text and "<" not in rendered.text.replace("<", "", 0)
    message = build_message(command, rendered, "Shop <no-reply@shop.example>")
    if command.email_type is EmailType.MARKETING_CAMPAIGN:
        assert message["List-Unsubscribe"].startswith("<https://")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert message["List-Unsubscribe"] is None


def test_pdf_attachments_can_be_switched_off_per_type():
    from processors.rendering import Renderer
    command = next(c for (t, _), c in ALL.items() if t is EmailType.INVOICE)
    assert Renderer(pdf_types=frozenset()).render(command).attachments == ()
    assert len(Renderer().render(command).attachments) == 1
