"""The preference centre in headless Chromium: the signed link in a real campaign email opens
the person's own page at `flowmail webhooks`, shows their answers, and their changes become
consent.changed events that the next campaigns honour; forged and expired links are
refused."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
import requests

from core.avro import registry
from flowmail.samples import campaign_launched
from processors import preferences
from processors.keys import idempotency_key
from tests.integration.browser import Browser
from tests.integration.helpers import end_offsets, poll, read_topic
from tests.integration.test_campaign_control import at_mailgun, audience, launch
from tests.integration.test_consent import finished
from tests.integration.test_webhooks import running_webhooks

LINK = re.compile(r"/preferences/\?token=([A-Za-z0-9_.\-]+)")


@pytest.fixture(scope="module")
def centre(worker, settings) -> Iterator[str]:
    with running_webhooks(settings, "test-preferences.log") as url:
        yield url


def own_links(fake_apis, campaign: dict, users: list[dict]) -> dict[str, str]:
    """user id -> the token of the preference link in the email that user got."""
    by_key = {idempotency_key(campaign["event_id"], "marketing_campaign", u["user"]["email"]):
              u["user"]["user_id"] for u in users}
    found = {}
    for mail in at_mailgun(fake_apis, campaign, users):
        tokens = set(LINK.findall(mail["html"]))
        assert len(tokens) == 1, tokens
        found[by_key[mail["headers"]["X-Flowmail-Idempotency-Key"]]] = tokens.pop()
    return found


def boxes(page) -> dict[str, bool]:
    return page.evaluate("Object.fromEntries([...document.querySelectorAll("
                         "'input[type=checkbox]')].map(b => [b.name, b.checked]))")


def test_a_person_changes_their_categories_and_the_campaigns_follow(
        centre, worker, settings, fake_apis, tmp_path):
    tag, users = audience(settings, 2)
    ids = [u["user"]["user_id"] for u in users]
    first = campaign_launched(f"prefs-{tag}", tags_any=[tag])
    launch(settings, first)
    assert poll(lambda: finished(settings, fake_apis, first, users), "the first campaign",
                120) == (set(ids),)
    tokens = own_links(fake_apis, first, users)
    assert set(tokens) == set(ids) and tokens[ids[0]] != tokens[ids[1]]
    for user_id, token in tokens.items():  # each link names its own recipient
        assert preferences.verify(settings.unsubscribe_secret.encode(), token,
                                  time.time())[0] == user_id

    since = end_offsets(settings.kafka_bootstrap, "consent.changed")
    browser = Browser(tmp_path / "profile")
    try:
        page = browser.open(f"{centre}/preferences/?token={tokens[ids[0]]}")
        assert "Nordlicht" in page.evaluate("document.body.innerText")
        assert boxes(page) == {"marketing": True, "product_news": False, "surveys": False}
        page.evaluate("document.getElementById('marketing').click(),"
                      "document.getElementById('product_news').click(),"
                      "document.getElementById('save').click(), true")
        poll(lambda: page.evaluate("document.getElementById('saved')?.textContent ?? ''"),
             "the saved page")
        assert boxes(page) == {"marketing": False, "product_news": True, "surveys": False}

        other = browser.open(f"{centre}/preferences/?token={tokens[ids[1]]}")
        other.evaluate("document.getElementById('unsubscribe_all').click(), true")
        poll(lambda: "unsubscribed from all marketing" in (other.evaluate(
            "document.getElementById('saved')?.textContent ?? ''")), "the unsubscribed page")
        assert boxes(other) == {"marketing": False, "product_news": False, "surveys": False}

        # the router keeps the changes in the profiles: a fresh visit shows them
        def shows_saved() -> bool:
            again = browser.open(f"{centre}/preferences/?token={tokens[ids[0]]}")
            return boxes(again) == {"marketing": False, "product_news": True,
                                    "surveys": False}
        poll(shows_saved, "the changes read back from the profiles", 60)
    finally:
        browser.close()

    # marketing off and product news on; unsubscribe all: marketing off (the rest was off)
    decoded = [registry().decode("consent.changed-value", r.value()) for r in
               read_topic(settings.kafka_bootstrap, "consent.changed", since)]
    assert sorted((d["user_id"], d["category"], d["granted"]) for d in decoded) == sorted([
        (ids[0], "marketing", False), (ids[0], "product_news", True),
        (ids[1], "marketing", False)])
    assert {(d["source"], d["wording_version"]) for d in decoded} == {
        ("preference_centre", preferences.WORDING_VERSION)}

    marketing = campaign_launched(f"prefs-m-{tag}", tags_any=[tag])
    news = campaign_launched(f"prefs-n-{tag}", tags_any=[tag], category="product_news")
    launch(settings, marketing)
    launch(settings, news)
    assert poll(lambda: finished(settings, fake_apis, marketing, users), "marketing",
                120) == (set(),)
    assert poll(lambda: finished(settings, fake_apis, news, users), "product news",
                120) == ({ids[0]},)


def test_forged_and_expired_links_are_refused(centre, settings):
    secret = settings.unsubscribe_secret.encode()
    good = preferences.token(secret, "cus-1", "shop-042", int(time.time()) + 600)
    assert requests.get(f"{centre}/preferences/", params={"token": good}, timeout=10).ok
    expired = preferences.token(secret, "cus-1", "shop-042", int(time.time()) - 1)
    forged = preferences.token(b"not-the-secret-0123456789abcdef0123", "cus-1", "shop-042",
                               int(time.time()) + 600)
    for token, status in ((expired, 410), (forged, 403), ("", 403), ("a.b.c", 403)):
        answer = requests.get(f"{centre}/preferences/", params={"token": token}, timeout=10)
        assert answer.status_code == status, token
        posted = requests.post(f"{centre}/preferences/", params={"token": token},
                               data={"marketing": "on", "action": "save"}, timeout=10)
        assert posted.status_code == status
    assert "cus-1" not in requests.get(f"{centre}/preferences/", params={"token": forged},
                                       timeout=10).text
