"""Consent records on the real stack: consent.changed events become part of the (shop, user)
profile, a campaign reaches only people with a current opt-in for its category (and never
through another shop's consent), marketing without the shop's postal address is refused
(CAN-SPAM), and a bad consent event is a dead letter with its reason."""

from __future__ import annotations

import datetime as dt
import json
import uuid

from flowmail.campaign_control import all_runs
from flowmail.publisher import Publisher
from flowmail.samples import campaign_launched
from processors.consent import change_event
from processors.keys import idempotency_key
from tests.integration.helpers import dead_letters_from, end_offsets, poll, read_topic
from tests.integration.test_campaign_control import (
    SHOP,
    at_mailgun,
    audience,
    launch,
    runs_of,
)


def consent(user: dict, category: str, granted: bool, shop: str = SHOP,
            minutes_ago: int = 0) -> dict:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return change_event(str(uuid.uuid4()), shop, user["user"]["user_id"], category, granted,
                        "preference_centre", "prefs-2026-11", at)


def stored_consents(settings, since: dict[int, int], users: list[dict]) -> dict[tuple, dict]:
    """(shop, user id) -> the consent map the router last wrote to the profiles changelog."""
    wanted = {u["user"]["user_id"] for u in users}
    found: dict[tuple, dict] = {}
    for record in read_topic(settings.kafka_bootstrap, "user.profiles", since):
        if record.value() is None:
            continue
        value = json.loads(record.value())
        if value.get("user_id") in wanted:
            found[(value["shop_id"], value["user_id"])] = value.get("consent") or {}
    return found


def sent_to(fake_apis, campaign: dict, users: list[dict]) -> set[str]:
    by_key = {idempotency_key(campaign["event_id"], "marketing_campaign", u["user"]["email"]):
              u["user"]["user_id"] for u in users}
    return {by_key[m["headers"]["X-Flowmail-Idempotency-Key"]]
            for m in at_mailgun(fake_apis, campaign, users)}


def finished(settings, fake_apis, campaign: dict, users: list[dict]
             ) -> tuple[set[str]] | None:
    """(who got the campaign,) once every partition's run is done and all it handed out
    went (a tuple: nobody is an answer too)."""
    runs = runs_of(settings, SHOP, campaign["campaign_id"])
    if not runs or any(r["phase"] != "done" for r in runs):
        return None
    got = sent_to(fake_apis, campaign, users)
    return (got,) if len(got) == sum(r["queued"] for r in runs) else None


def test_campaigns_reach_only_a_current_opt_in_for_their_category(worker, settings, fake_apis):
    tag, users = audience(settings, 4)  # all opted in to marketing at signup
    ids = [u["user"]["user_id"] for u in users]
    since = end_offsets(settings.kafka_bootstrap, "user.profiles")
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event in (consent(users[0], "marketing", False),          # withdrawn
                      consent(users[1], "product_news", True),
                      consent(users[2], "product_news", True, minutes_ago=10),
                      consent(users[2], "product_news", False, minutes_ago=5),
                      consent(users[2], "product_news", True, minutes_ago=7),  # older: no effect
                      consent(users[3], "product_news", True, shop="shop-other")):
            publisher.publish("consent.changed", event)

    def stored() -> dict | None:
        found = stored_consents(settings, since, users)
        keys = {(SHOP, ids[0]), (SHOP, ids[1]), (SHOP, ids[2]), ("shop-other", ids[3])}
        withdrawn = found.get((SHOP, ids[2]), {}).get("product_news", {}).get("granted")
        return found if keys <= set(found) and withdrawn is False else None

    found = poll(stored, "the consent changes in the profiles")
    assert found[(SHOP, ids[0])]["marketing"]["granted"] is False
    assert found[(SHOP, ids[0])]["marketing"]["source"] == "preference_centre"
    assert found[(SHOP, ids[0])]["marketing"]["wording_version"] == "prefs-2026-11"
    assert found[(SHOP, ids[2])]["product_news"]["granted"] is False  # the newest decision
    assert "@" not in json.dumps(list(found.values()))  # no address in the consent records

    marketing = campaign_launched(f"consent-m-{tag}", tags_any=[tag])
    news = campaign_launched(f"consent-n-{tag}", tags_any=[tag], category="product_news")
    launch(settings, marketing)
    launch(settings, news)
    assert poll(lambda: finished(settings, fake_apis, marketing, users),
                "the marketing campaign", 120) == ({ids[1], ids[2], ids[3]},)
    assert poll(lambda: finished(settings, fake_apis, news, users),
                "the product news campaign", 120) == ({ids[1]},)  # not ids[3]: another shop's


def test_marketing_without_a_postal_address_and_bad_consent_are_dead_lettered(
        worker, settings):
    since = end_offsets(settings.kafka_bootstrap, "email.dlq")
    no_address = campaign_launched(f"no-address-{uuid.uuid4().hex[:6]}")
    no_address["shop"]["postal_address"] = None
    launch(settings, no_address)
    user = {"user": {"user_id": f"cus-{uuid.uuid4().hex[:8]}"}}
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("consent.changed", {**consent(user, "marketing", True),
                                              "category": "everything"})
        publisher.publish("consent.changed", {**consent(user, "marketing", True),
                                              "source": "a rumour"})

    found = dead_letters_from(settings.kafka_bootstrap, since,
                              ("campaign.launched", "consent.changed"), 3)
    reasons = sorted((h["flowmail.source_topic"], h["flowmail.reason"]) for h in found)
    assert reasons == [("campaign.launched", "missing_postal_address"),
                       ("consent.changed", "schema_mismatch"),
                       ("consent.changed", "schema_mismatch")]
    assert any("CAN-SPAM" in h["flowmail.detail"] for h in found)
    assert (SHOP, no_address["campaign_id"]) not in all_runs(settings)
