"""Batch APIs: one rendering and one call for many recipients, each personalized."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from flowmail.samples import campaign_launched, user_created
from processors.bulk import group, render_bulk
from processors.profiles import profile_from_user_created
from processors.rendering import Renderer
from processors.routing import fan_out_campaign
from processors.tracking import Tracker, verify
from providers.breaker import CircuitBreaker
from providers.chain import AllProvidersFailed, Guarded, NoBulkProvider, ProviderChain, send_bulk
from providers.ratelimit import TokenBucket
from providers.smtp import SmtpProvider
from tests.providers.test_providers import mailgun, sendgrid

SENDER = ("no-reply@shopflow.example", "Nordlicht Outdoor")
RENDERER = Renderer()


def campaign_commands(count=12):
    now = dt.datetime.now(dt.UTC)
    profiles = []
    for i in range(count):
        profile = profile_from_user_created(user_created(i, now), 0)
        profile.update(marketing_opt_in=True, locale="de", first_name=f"Kim<{i}>",
                       email=f"kim.{i}@example.org")
        profiles.append(profile)
    event = campaign_launched(now=now)
    event["variants"][0]["subject"] = "Hallo {{ first_name }}, Winterschlussverkauf"
    commands, _ = fan_out_campaign(event, "campaign.launched", profiles, 1, 1, b"u", b"p")
    return commands


@pytest.fixture
def apis(fake_apis):
    fake_apis.reset()
    yield fake_apis
    fake_apis.primary_down()


def guard(provider):
    return Guarded(provider, CircuitBreaker(3, 30), TokenBucket(1000, 1000))


@pytest.mark.parametrize("which", ["sendgrid", "mailgun"])
async def test_one_call_many_personalized_recipients(apis, which):
    chunk = max(group(campaign_commands()), key=len)  # one (campaign, variant, locale) group
    provider = sendgrid(apis) if which == "sendgrid" else mailgun(apis)
    url = apis.sendgrid_url if which == "sendgrid" else apis.mailgun_url

    async def render(placeholder, _max):
        return render_bulk(RENDERER, chunk, placeholder)

    name, results = await send_bulk(ProviderChain([guard(provider)]), render, len(chunk), SENDER)
    assert name == which and len(results) == len(chunk)
    accepted = {m["to"][0]: m for m in apis.accepted(url)}
    assert set(accepted) == {c.recipient for c in chunk}
    for command in chunk:
        mail = accepted[command.recipient]
        first = command.template_data["first_name"]
        escaped = first.replace("<", "&lt;").replace(">", "&gt;")
        assert mail["headers"]["X-Flowmail-Idempotency-Key"] == command.idempotency_key
        token = command.template_data["unsubscribe_url"].partition("token=")[2]
        assert mail["headers"]["List-Unsubscribe"].endswith(f"token={token}>")
        assert escaped in mail["html"] and "<script" not in mail["html"]
        if command.template_data["variant"]["variant_id"] == "A":
            assert mail["subject"] == f"Hallo {escaped}, Winterschlussverkauf"


async def test_failover_between_batch_providers(apis):
    chunk = group(campaign_commands())[0]
    apis.faults(apis.sendgrid_url, status=503, count=-1)
    chain = ProviderChain([guard(sendgrid(apis)), guard(mailgun(apis))])

    async def render(placeholder, _max):
        return render_bulk(RENDERER, chunk, placeholder)

    name, _ = await send_bulk(chain, render, len(chunk), SENDER)
    assert name == "mailgun" and len(apis.accepted(apis.mailgun_url)) == len(chunk)
    apis.faults(apis.mailgun_url, status=429, count=-1, retry_after=9)
    with pytest.raises(AllProvidersFailed) as err:
        await send_bulk(ProviderChain([guard(mailgun(apis))]), render, len(chunk), SENDER)
    assert err.value.retry_after_s == 9


async def test_chain_without_batch_api_says_so():
    chain = ProviderChain([guard(SmtpProvider("127.0.0.1", 1))])
    with pytest.raises(NoBulkProvider):
        await send_bulk(chain, None, 1, SENDER)


@pytest.mark.parametrize("first_name", ["Kim", "O'Brien & <b>Söhne</b>", 'Ana "Q"', "李雷",
                                        "fmph0token0fmph", "", "{{ 7*7 }}"])
def test_render_once_then_fill_equals_a_render_per_recipient(first_name):
    """The one-by-one path renders a campaign group once (processors/bulk.render_personal):
    subject and text are the direct render's, the HTML the same once entities are read."""
    import html

    from processors.bulk import render_personal
    commands = campaign_commands(6)
    for index, command in enumerate(commands):
        command.template_data["first_name"] = first_name if index % 2 else f"{first_name}{index}"
    for members in group(commands):
        for command, filled in zip(members, render_personal(RENDERER, members), strict=True):
            direct = RENDERER.render(command)
            assert filled.subject == direct.subject and filled.text == direct.text
            assert html.unescape(filled.html) == html.unescape(direct.html)
            assert "fmph0first_name0fmph" not in filled.html + filled.text + filled.subject


TRACKER = Tracker.of("tracking-secret-0123456789abcdef0123", "https://t.shop.example",
                     "marketing_campaign", b"pseudonym")


@pytest.mark.parametrize("which", ["sendgrid", "mailgun"])
async def test_a_batch_call_tracks_each_recipient_under_its_own_id(apis, which):
    """One render, one call: every recipient's links and pixel carry that recipient's signed
    id (filled in by the provider), the unsubscribe link stays as it is, the provider's own
    tracking is off and its events will echo the recipient's fields."""
    chunk = max(group(campaign_commands()), key=len)
    provider = sendgrid(apis) if which == "sendgrid" else mailgun(apis)
    url = apis.sendgrid_url if which == "sendgrid" else apis.mailgun_url

    async def render(placeholder, _max):
        return render_bulk(RENDERER, chunk, placeholder, TRACKER)

    await send_bulk(ProviderChain([guard(provider)]), render, len(chunk), SENDER)
    accepted = {m["to"][0]: m for m in apis.accepted(url)}
    for command in chunk:
        mail = accepted[command.recipient]
        tracked = re.findall(r'https://t\.shop\.example/t/[co]/([\w.-]+)/([\w.-]+?)(?:\.gif)?"',
                             mail["html"])
        assert len(tracked) >= 2  # the call to action and the pixel at least
        for link_token, recipient_token in tracked:
            assert verify(list(TRACKER.keys), recipient_token)["k"] == command.idempotency_key
            verify(list(TRACKER.keys), link_token)
        assert command.template_data["unsubscribe_url"] in mail["html"]
        if which == "sendgrid":
            assert mail["tracking_settings"]["click_tracking"]["enable"] is False
            assert mail["custom_args"]["flowmail_key"] == command.idempotency_key
        else:
            assert mail["options"]["tracking"] == "no"
            assert mail["variables"]["flowmail_key"] == command.idempotency_key


def test_tracked_render_once_then_fill_equals_a_tracked_render_per_recipient():
    from processors.bulk import render_personal
    commands = campaign_commands(6)
    for members in group(commands):
        for command, filled in zip(members, render_personal(RENDERER, members, TRACKER),
                                   strict=True):
            direct = TRACKER.apply(RENDERER.render(command), command,
                                   TRACKER.recipient_token(command))
            assert html.unescape(filled.html) == html.unescape(direct.html)
            assert "/t/o/" in filled.html and "fmph0track0fmph" not in filled.html
