"""Campaign control on the real stack: a throttled campaign paused, resumed and cancelled
by an operator's command (and not by another shop's), and an A/B test that sends the rest
of the audience the variant people clicked, with real clicks on the tracked links."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from flowmail.campaign_control import all_runs, status
from flowmail.publisher import Publisher
from flowmail.samples import campaign_launched
from processors.campaign_runs import in_test_share
from processors.keys import idempotency_key
from tests.integration.helpers import outbox, poll
from tests.integration.test_all_event_types import fresh_user
from tests.integration.test_webhooks import running_webhooks

SHOP = "shop-042"  # the samples' shop
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17"


def audience(settings, count: int) -> tuple[str, list[dict]]:
    """``count`` opted-in profiles with a tag of their own, stored (their welcome sent)."""
    tag = f"ctl-{uuid.uuid4().hex[:8]}"
    users = []
    for index in range(count):
        event, _ = fresh_user(900 + index)
        event["tags"] = [tag]
        users.append(event)
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event in users:
            publisher.publish("user.created", event)
    keys = [idempotency_key(e["event_id"], "welcome", e["user"]["email"]) for e in users]
    poll(lambda: all(k in outbox(settings.outbox_dir) for k in keys),
         "the welcome emails (profiles stored)", timeout_s=120)
    return tag, users


def launch(settings, campaign: dict) -> None:
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("campaign.launched", campaign)


def at_mailgun(fake_apis, campaign: dict, users: list[dict]) -> list[dict]:
    keys = {idempotency_key(campaign["event_id"], "marketing_campaign", u["user"]["email"])
            for u in users}
    return [m for m in fake_apis.accepted(fake_apis.mailgun_url)
            if m["headers"].get("X-Flowmail-Idempotency-Key") in keys]


def runs_of(settings, shop_id: str, campaign_id: str) -> list[dict]:
    return all_runs(settings).get((shop_id, campaign_id), [])


def drained(settings, fake_apis, campaign: dict, users: list[dict]) -> int | None:
    """Everything handed to the senders has been sent: the count at rest."""
    handed = sum(r["queued"] for r in runs_of(settings, SHOP, campaign["campaign_id"]))
    sent = len(at_mailgun(fake_apis, campaign, users))
    return sent if sent == handed else None


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "flowmail", "campaign", *args],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    return done.stdout


def stays(check: Callable[[], bool], what: str, seconds: float) -> None:
    """``check`` holds for ``seconds`` (what must *not* happen cannot be polled for)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.25)


def test_a_throttled_campaign_is_paused_resumed_and_cancelled_by_its_own_shop_only(
        worker, settings, fake_apis):
    tag, users = audience(settings, 30)
    campaign = campaign_launched(f"ctl-{uuid.uuid4().hex[:6]}", throttle_per_minute=60,
                                 tags_any=[tag])
    cid = campaign["campaign_id"]
    # another shop's commands for a campaign of the same id do not touch this one
    cli("pause", "--shop", "shop-other", "--campaign", cid)
    cli("cancel", "--shop", "shop-other", "--campaign", cid, "--reason", "not theirs")
    launch(settings, campaign)
    poll(lambda: len(at_mailgun(fake_apis, campaign, users)) >= 3,
         "the first emails, a second apart (60 a minute)", timeout_s=120)

    assert "pause:" in cli("pause", "--shop", SHOP, "--campaign", cid, "--reason", "copy typo")
    poll(lambda: (lambda r: len(r) == settings.partitions_domain
                  and all(x["paused"] for x in r))(runs_of(settings, SHOP, cid)),
         "every partition's run paused")

    held = poll(lambda: drained(settings, fake_apis, campaign, users),
                "what was handed out before the pause, sent")
    # at 60 a minute, three seconds would have sent three more
    stays(lambda: len(at_mailgun(fake_apis, campaign, users)) == held,
          "nothing more is sent while paused", 3.0)

    cli("resume", "--shop", SHOP, "--campaign", cid)
    poll(lambda: len(at_mailgun(fake_apis, campaign, users)) >= held + 2,
         "the campaign to go on after the resume", timeout_s=60)
    cli("cancel", "--shop", SHOP, "--campaign", cid)
    poll(lambda: all(r["phase"] == "cancelled" for r in runs_of(settings, SHOP, cid)),
         "every partition's run cancelled")
    final = poll(lambda: drained(settings, fake_apis, campaign, users),
                 "what was handed out before the cancel, sent")
    stays(lambda: len(at_mailgun(fake_apis, campaign, users)) == final,
          "nothing more is sent once cancelled", 3.0)
    assert held + 2 <= final < len(users)

    found = json.loads(cli("status", "--shop", SHOP, "--campaign", cid, "--json"))
    assert found["phase"] == "cancelled" and found["targeted"] == len(users)
    assert found["queued"] == final
    poll(lambda: status(settings, SHOP, cid)["sent"] == final,
         "the sent emails counted in OpenSearch")
    mails = at_mailgun(fake_apis, campaign, users)
    assert len({m["headers"]["X-Flowmail-Idempotency-Key"] for m in mails}) == len(mails)
    # the other shop's commands never made a run of their own
    assert runs_of(settings, "shop-other", cid) == []


@pytest.fixture(scope="module")
def tracking(stack, settings) -> Iterator[str]:
    """`flowmail webhooks`: where the tracked links of the emails lead."""
    with running_webhooks(settings, "test-tracking.log") as url:
        yield url


def test_an_ab_test_sends_the_rest_the_variant_people_clicked(
        worker, settings, fake_apis, tracking):
    tag, users = audience(settings, 60)
    ab = {"test_percent": 50, "window_seconds": 20, "metric": "click_rate", "min_sample": 3}
    campaign = campaign_launched(f"ab-{uuid.uuid4().hex[:6]}", ab_test=ab, tags_any=[tag])
    campaign["variants"][1]["cta_url"] = "https://nordlicht.example/sale-b"
    cid = campaign["campaign_id"]
    test_share = [u for u in users if in_test_share(cid, u["user"]["user_id"], 50)]
    launch(settings, campaign)

    mails = poll(lambda: (lambda m: m if len(m) >= len(test_share) else None)(
        at_mailgun(fake_apis, campaign, users)), "the test share's emails", timeout_s=120)
    assert len(mails) == len(test_share)  # the rest waits for the decision
    by_variant = {v: [m for m in mails if m["variables"]["flowmail_variant"] == v]
                  for v in ("A", "B")}
    assert min(len(found) for found in by_variant.values()) >= ab["min_sample"]
    # people open both variants; they click B's button only (real clicks, signed links)
    for mail in mails:
        links = dict((kind, url) for url, kind in
                     re.findall(r'(https?://[^"]+/t/([co])/[^"]+)"', mail["html"]))
        pixel = links["o"].replace(settings.tracking_base_url, tracking)
        assert requests.get(pixel, headers={"User-Agent": BROWSER}, timeout=30).ok
    clicked = 0
    for mail in by_variant["B"]:
        [button] = re.findall(r'<a href="(https?://[^"]+/t/c/[^"]+)"[^>]*>\s*'
                              + re.escape(campaign["variants"][1]["cta_label"]), mail["html"])
        answer = requests.get(button.replace(settings.tracking_base_url, tracking),
                              headers={"User-Agent": BROWSER}, allow_redirects=False,
                              timeout=30)
        assert answer.status_code == 302
        assert answer.headers["Location"] == campaign["variants"][1]["cta_url"]
        clicked += 1

    everyone = poll(lambda: (lambda m: m if len(m) == len(users) else None)(
        at_mailgun(fake_apis, campaign, users)),
        "the rest of the audience, after the window", timeout_s=180)
    rest = [m for m in everyone if m not in mails]
    assert rest and all(m["variables"]["flowmail_variant"] == "B" for m in rest)
    assert {m["subject"] for m in rest} == {campaign["variants"][1]["subject"]}

    found = status(settings, SHOP, cid)
    decision = found["decision"]
    assert found["winner"] == "B" and decision["reason"] == "best_metric"
    assert decision["metric"] == "click_rate"
    assert decision["figures"]["B"]["clicked"] == clicked
    assert decision["figures"]["A"]["clicked"] == 0
    assert decision["figures"]["A"]["sent"] == len(by_variant["A"])
    assert found["phase"] == "done" and found["targeted"] == len(users)


def test_bad_commands_and_bad_plans_are_dead_lettered_once_with_their_reason(
        worker, settings):
    """A command nobody can act on and a launch whose plan is impossible: one dead letter
    each (not one per partition), with the reason and the source; nothing else happens."""
    import datetime as dt

    from core.avro import registry
    from tests.integration.helpers import dead_letters_from, end_offsets, produce_raw
    since = end_offsets(settings.kafka_bootstrap, "email.dlq")
    control = {"event_id": str(uuid.uuid4()), "occurred_at": dt.datetime.now(dt.UTC),
               "schema_version": 1, "shop_id": SHOP, "campaign_id": "c-bad",
               "action": "explode", "variant_id": None, "reason": None, "figures_json": None}
    bad_action = produce_raw(settings.kafka_bootstrap, "campaign.control",
                             registry().encode("campaign.control-value", control), b"c-bad")
    garbage = produce_raw(settings.kafka_bootstrap, "campaign.control", b"\x00\x00\x00\x00",
                          b"c-bad")
    impossible = campaign_launched(f"bad-{uuid.uuid4().hex[:6]}", throttle_per_minute=0)
    launch(settings, impossible)

    found = dead_letters_from(settings.kafka_bootstrap, since,
                              ("campaign.control", "campaign.launched"), 3)
    by_offset = {(h["flowmail.source_topic"], int(h["flowmail.source_partition"]),
                  int(h["flowmail.source_offset"])): h["flowmail.reason"] for h in found}
    assert by_offset[("campaign.control", *bad_action)] == "schema_mismatch"
    assert by_offset[("campaign.control", *garbage)] == "undecodable"
    assert [h["flowmail.reason"] for h in found
            if h["flowmail.source_topic"] == "campaign.launched"] == ["schema_mismatch"]
    assert len(found) == 3  # the bad command was not copied to every partition first
    assert (SHOP, impossible["campaign_id"]) not in all_runs(settings)


def test_a_campaign_bouncing_past_its_threshold_is_paused_by_the_alert(
        worker, settings, fake_apis):
    """A rule that acts: the providers report 8 % of a campaign's mail bounced; the anomaly
    detector raises the campaign's bounce alert and pauses that campaign (of that shop)."""
    from confluent_kafka import Producer

    from core.avro import registry
    from core.kafka_config import producer_config
    from core.vocab import DeliveryStatus
    from processors.commands import DeliveryEvent
    from tests.integration.helpers import end_offsets, read_topic
    tag, users = audience(settings, 20)
    campaign = campaign_launched(f"bnc-{uuid.uuid4().hex[:6]}", throttle_per_minute=30,
                                 tags_any=[tag])
    cid = campaign["campaign_id"]
    since = end_offsets(settings.kafka_bootstrap, "campaign.control")
    launch(settings, campaign)
    poll(lambda: at_mailgun(fake_apis, campaign, users), "the first email", timeout_s=120)
    producer = Producer(producer_config(settings.kafka_bootstrap))
    for index, outcome in enumerate(["sent"] * 150 + ["bounced"] * 13):
        key = uuid.uuid4().hex[:40]
        event = DeliveryEvent(
            event_id=uuid.uuid4().hex, status=DeliveryStatus(outcome), idempotency_key=key,
            command_id="", email_type="marketing_campaign", priority="marketing",
            locale="en", shop_id=SHOP, recipient_key=f"r{index:031d}",
            recipient_domain="example.org", attempt=0 if outcome == "bounced" else 1,
            source_event_id="", occurred_at=int(time.time() * 1000), provider="mailgun",
            campaign_id=cid, variant="A")
        producer.produce("email.delivery", key=key.encode(), value=registry().encode(
            "email.delivery-value", event.to_record(), check=False))
    assert producer.flush(30) == 0

    poll(lambda: (lambda r: len(r) == settings.partitions_domain
                  and all(x["paused"] for x in r))(runs_of(settings, SHOP, cid)),
         "the campaign paused by its bounce alert", timeout_s=90)
    pauses = [registry().decode("campaign.control-value", r.value())
              for r in read_topic(settings.kafka_bootstrap, "campaign.control", since)]
    [reason] = {p["reason"] for p in pauses if p["campaign_id"] == cid}
    assert reason.startswith(f"alert bounce_rate/campaign/{SHOP}/{cid}")

    held = poll(lambda: drained(settings, fake_apis, campaign, users),
                "what was handed out before the pause, sent")
    stays(lambda: len(at_mailgun(fake_apis, campaign, users)) == held,
          "nothing more is sent while paused", 3.0)
    assert held < len(users)
    cli("cancel", "--shop", SHOP, "--campaign", cid)
