"""Every email type renders from the shipped sample data: subject, HTML and text."""

import datetime as dt
import email
import email.policy
from html import unescape

import pytest

from core.catalogue import EmailType
from flowmail.preview import preview_command
from flowmail.samples import SAMPLES, campaign_launched, user_created
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
    for kind in (EmailType.OPERATOR_ALERT, EmailType.DAILY_REPORT):  # flowmail's own, English
        found[(kind, "en")] = preview_command(kind, "en")
    return found


ALL = commands()


def test_every_type_is_covered():
    assert {t for t, _ in ALL} == set(EmailType)


@pytest.mark.parametrize("key", sorted(ALL), ids=[f"{t.value}-{loc}" for t, loc in sorted(ALL)])
def test_renders(key):
    command = ALL[key]
    rendered = RENDERER.render(command)
    assert rendered.subject and "\n" not in rendered.subject
    sender = command.template_data["shop"]["name"]  # a shop's, or flowmail's own to operators
    assert "<html" in rendered.html and sender in rendered.html
    assert sender in rendered.text and "<" not in rendered.text
    message = build_message(command, rendered, "Shop <no-reply@shop.example>")
    if command.email_type is EmailType.MARKETING_CAMPAIGN:
        assert message.headers["List-Unsubscribe"].startswith("<https://")
        assert message.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    else:
        assert "List-Unsubscribe" not in message.headers
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert parsed["Subject"] == rendered.subject
    assert parsed["To"].addresses[0].addr_spec == command.recipient
    assert parsed["To"].addresses[0].display_name == command.recipient_name
    crlf = lambda part: parsed.get_body((part,)).get_content().replace("\r\n", "\n")  # noqa: E731
    assert crlf("plain") == rendered.text.replace("\r\n", "\n")
    assert unescape(crlf("html")) == unescape(rendered.html.replace("\r\n", "\n"))
    assert [(p.get_filename(), p.get_content()) for p in parsed.iter_attachments()] == \
        [(a.filename, a.content) for a in rendered.attachments]
    assert not parsed.defects and all(not p.defects for p in parsed.walk())


def test_pdf_attachments_can_be_switched_off_per_type():
    from processors.rendering import Renderer
    command = next(c for (t, _), c in ALL.items() if t is EmailType.INVOICE)
    assert Renderer(pdf_types=frozenset()).render(command).attachments == ()
    assert len(Renderer().render(command).attachments) == 1
