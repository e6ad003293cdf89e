"""Erasure on a broker of its own, with a 40 s erasure bound: a person gets mail (a welcome,
an order confirmation, a campaign; one of their events is dead-lettered), unsubscribes, and
is erased. Their profile and analytics go at once; once the bound has passed, no record of
any topic, no OpenSearch document and no file under flowmail's home (local stores, logs, the
mail catcher's outbox, the broker's own data files) holds their address. Afterwards a
campaign does not reach them, their unsubscribe still holds when they sign up again, and an
order confirmation still goes out."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from flowmail.campaign_control import all_runs
from flowmail.publisher import Publisher
from flowmail.samples import campaign_launched, order_placed
from processors.keys import idempotency_key, recipient_key
from tests.integration.helpers import outbox, poll
from tests.integration.private_broker import private_broker
from tests.integration.test_all_event_types import fresh_user

BOUND_S = 60
SHOP = "shop-042"


def topics_holding(bootstrap: str, needle: bytes) -> dict[str, int]:
    """topic -> records whose key, value or headers contain ``needle``, over every topic."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"scan-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    found: dict[str, int] = {}
    try:
        ends: dict[tuple[str, int], int] = {}
        for name, meta in consumer.list_topics(timeout=10).topics.items():
            for p in meta.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)
                if high > low:
                    ends[(name, p)] = high
        consumer.assign([TopicPartition(n, p, OFFSET_BEGINNING) for n, p in ends])
        deadline = time.monotonic() + 120
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(5000, timeout=0.5):
                if message.error():
                    continue
                where = (message.topic(), message.partition())
                blob = b"".join([message.key() or b"", message.value() or b"",
                                 *(v or b"" for _, v in message.headers() or [])])
                if needle in blob.lower():
                    found[where[0]] = found.get(where[0], 0) + 1
                if message.offset() + 1 >= ends.get(where, 0):
                    ends.pop(where, None)
            # a partition whose records were all deleted meanwhile has nothing left to read
            for name, p in list(ends):
                low, _ = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10,
                                                        cached=False)
                if low >= ends[(name, p)]:
                    ends.pop((name, p))
        assert not ends, f"not read to the end: {sorted(ends)[:5]}"
    finally:
        consumer.close()
    return found


def files_holding(home: Path, needle: bytes) -> list[str]:
    hits = []
    for path in home.rglob("*"):
        try:
            if path.is_file() and needle in path.read_bytes().lower():
                hits.append(str(path.relative_to(home)))
        except OSError:
            continue  # a file the broker deleted while we walked
    return hits


def documents_holding(opensearch_url: str, prefix: str, needle: str) -> int:
    requests.post(f"{opensearch_url}/{prefix}-*/_refresh", timeout=10)
    answer = requests.post(f"{opensearch_url}/{prefix}-*/_search",
                           params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                           json={"size": 10000, "query": {"match_all": {}}}, timeout=30)
    answer.raise_for_status()
    return sum(needle in json.dumps(h["_source"]).lower() for h in answer.json()["hits"]["hits"])


def analytics_of(opensearch_url: str, prefix: str, key: str) -> list[dict]:
    requests.post(f"{opensearch_url}/{prefix}-*/_refresh", timeout=10)
    answer = requests.post(f"{opensearch_url}/{prefix}-*/_search",
                           params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                           json={"size": 1000, "query": {"term": {"recipient_key": key}}},
                           timeout=30)
    answer.raise_for_status()
    return [h["_source"] for h in answer.json()["hits"]["hits"]]


def test_an_erased_person_is_gone_everywhere_within_the_bound(stack, settings, tmp_path):
    prefix = f"erasure-{uuid.uuid4().hex[:6]}"
    with private_broker(tmp_path, settings, FLOWMAIL_INDEX_PREFIX=prefix,
                        FLOWMAIL_ERASURE_BOUND_S=str(BOUND_S),
                        FLOWMAIL_RETENTION_MS="10000",
                        FLOWMAIL_APP_ID="flowmail-erasure") as broker:
        broker.start_worker()
        broker.wait_all_ready(180)
        own = broker.settings
        home, bootstrap = own.home, own.kafka_bootstrap
        person, _ = fresh_user(41)
        address, user_id = person["user"]["email"], person["user"]["user_id"]
        needle, key = address.lower().encode(), recipient_key(address,
                                                              own.pseudonym_secret.encode())
        order = order_placed(41)
        order["customer"].update(customer_id=user_id, email=address)
        hostile = order_placed(42)
        hostile["customer"].update(customer_id=user_id, email=address,
                                   first_name="Anna\r\nBcc: everyone@example.org")
        with Publisher(bootstrap) as publisher:
            publisher.publish("user.created", person)
            publisher.publish("order.placed", order)
            publisher.publish("order.placed", hostile)  # dead-lettered: header injection
        keys = [idempotency_key(person["event_id"], "welcome", address),
                idempotency_key(order["event_id"], "order_confirmation", address)]
        poll(lambda: all(k in outbox(own.outbox_dir) for k in keys), "their emails", 120)
        campaign = campaign_launched(f"erase-{uuid.uuid4().hex[:6]}", tags_any=person["tags"])
        with Publisher(bootstrap) as publisher:
            publisher.publish("campaign.launched", campaign)
        campaign_key = idempotency_key(campaign["event_id"], "marketing_campaign", address)
        poll(lambda: campaign_key in outbox(own.outbox_dir), "the campaign email", 120)
        poll(lambda: len(analytics_of(own.opensearch_url, prefix, key)) >= 3,
             "their delivery events indexed", 120)
        # the scans see the address where it is before the erasure
        before = topics_holding(bootstrap, needle)
        assert {"user.created", "order.placed", "user.profiles", "email.dlq",
                "email.critical", "email.transactional", "email.marketing"} <= set(before), before
        assert any(path.startswith("outbox/") for path in files_holding(home, needle))
        unsubscribed = broker.cli("suppress", address, "--reason", "unsubscribe",
                                  "--shop", SHOP)
        assert unsubscribed.returncode == 0, unsubscribed.stderr

        erased_at = time.monotonic()
        done = broker.cli("gdpr", "erase", "--shop", SHOP, "--email", address)
        assert done.returncode == 0, done.stdout + done.stderr
        assert address not in done.stdout + done.stderr
        assert "1 profile(s)" in done.stdout, done.stdout
        assert analytics_of(own.opensearch_url, prefix, key) == []  # at once
        assert not list(own.outbox_dir.glob("*.eml")) or not files_holding(
            own.outbox_dir, needle)

        # the bound is the contract: once it has passed, one scan of everything finds nothing
        poll(lambda: time.monotonic() >= erased_at + BOUND_S, "the erasure bound to pass",
             timeout_s=BOUND_S + 10, every_s=1)
        assert topics_holding(bootstrap, needle) == {}
        assert files_holding(home, needle) == []
        assert documents_holding(own.opensearch_url, prefix, address.lower()) == 0

        # afterwards: a campaign does not reach them; an order confirmation does
        later = campaign_launched(f"after-{uuid.uuid4().hex[:6]}", tags_any=person["tags"])
        order_after = order_placed(43)
        order_after["customer"].update(customer_id=user_id, email=address)
        with Publisher(bootstrap) as publisher:
            publisher.publish("campaign.launched", later)
            publisher.publish("order.placed", order_after)
        poll(lambda: idempotency_key(order_after["event_id"], "order_confirmation", address)
             in outbox(own.outbox_dir), "the order confirmation after the erasure", 120)
        runs = poll(lambda: [r for r in all_runs(own).get((SHOP, later["campaign_id"]), [])
                             if r["phase"] == "done"] or None, "the later campaign done", 120)
        assert sum(r["queued"] for r in runs) == 0
        assert idempotency_key(later["event_id"], "marketing_campaign", address) not in outbox(
            own.outbox_dir)

        # they sign up again (opted in): their unsubscribe still holds
        again = {**person, "event_id": str(uuid.uuid4())}
        with Publisher(bootstrap) as publisher:
            publisher.publish("user.created", again)
        poll(lambda: idempotency_key(again["event_id"], "welcome", address)
             in outbox(own.outbox_dir), "the welcome of the new sign-up", 120)
        third = campaign_launched(f"again-{uuid.uuid4().hex[:6]}", tags_any=person["tags"])
        with Publisher(bootstrap) as publisher:
            publisher.publish("campaign.launched", third)
        poll(lambda: any(d["status"] == "suppressed" and d.get("campaign_id") ==
                         third["campaign_id"] for d in analytics_of(own.opensearch_url,
                                                                     prefix, key)),
             "the campaign suppressed by the unsubscribe", 120)
        assert idempotency_key(third["event_id"], "marketing_campaign", address) not in outbox(
            own.outbox_dir)
