"""``flowmail gdpr export`` and ``erase``: everything flowmail holds about one person at one
shop, as JSON (GDPR art. 15 and 20), and its erasure (art. 17).

Where it looks: the profiles changelog (``user.profiles``: the profile and its current
consent), the consent record (``consent.changed``: every decision), the suppression changes
(``email.suppressions``, by recipient key) and the delivery events in OpenSearch (by
recipient key: every email sent, with its statuses). The compacted and kept-forever topics
are read whole, as an operator tool may; the command topics hold a person's mail only until
it is sent (their retention), and are not part of an export.

Nothing is printed but counts and the file's path: the address stays in the file.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from core.avro import ContractError, registry
from core.catalogue import CONSENT_CHANGED, ERASURE_REQUESTED
from core.opensearch_client import search_events
from core.settings import Settings
from processors.keys import normalize_address, recipient_key
from processors.suppression import merge, parse_change
from streams.changelog_store import read_to_end
from streams.topics import PROFILES, SUPPRESSIONS

MAX_EVENTS = 10_000  # delivery events per export (one OpenSearch page)


def _partitions(settings: Settings, topic: str) -> Iterable[int]:
    return list(_ends(settings, topic))


def _read(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    records: list[tuple[bytes | None, bytes | None]] = []
    read_to_end(settings.kafka_bootstrap, topic, _partitions(settings, topic),
                lambda _p, key, value: records.append((key, value)))
    return records


def profiles_of(settings: Settings, shop_id: str, address: str) -> list[dict[str, Any]]:
    """The current profiles at ``shop_id`` with this address (a compacted topic: the last
    value of each key is the profile)."""
    latest: dict[bytes, dict[str, Any] | None] = {}
    for key, value in _read(settings, PROFILES):
        if key is not None:
            latest[key] = None if value is None else json.loads(value)
    wanted = normalize_address(address)
    return [{k: v for k, v in p.items() if k != "partition"} for p in latest.values()
            if p and p.get("shop_id") == shop_id
            and normalize_address(p.get("email") or "") == wanted]


def consent_history(settings: Settings, shop_id: str, user_ids: set[str]
                    ) -> list[dict[str, Any]]:
    schemas, found = registry(), []
    for _key, value in _read(settings, CONSENT_CHANGED.topic):
        try:
            event = schemas.decode(CONSENT_CHANGED.subject, value)
        except ContractError:
            continue  # dead-lettered by the router; not a decision
        if event["shop_id"] == shop_id and event["user_id"] in user_ids:
            found.append({**event, "occurred_at": event["occurred_at"].isoformat()})
    return sorted(found, key=lambda e: e["occurred_at"])


def suppression_of(settings: Settings, key: str) -> dict[str, Any] | None:
    entry = None
    for record_key, value in _read(settings, SUPPRESSIONS):
        if record_key is not None and record_key.decode() == key:
            entry = merge(entry, parse_change(None if value is None else json.loads(value)))
    return entry


def emails_of(settings: Settings, shop_id: str, key: str) -> list[dict[str, Any]]:
    """Every email to the person at the shop, its delivery events in time order."""
    answer = search_events(settings, {
        "size": MAX_EVENTS, "sort": [{"@timestamp": "asc"}],
        "query": {"bool": {"filter": [{"term": {"recipient_key": key}},
                                      {"term": {"shop_id": shop_id}}]}}})
    answer.raise_for_status()
    emails: dict[str, dict[str, Any]] = {}
    for hit in answer.json()["hits"]["hits"]:
        doc = hit["_source"]
        email = emails.setdefault(doc.get("idempotency_key") or doc["event_id"], {
            "email_type": doc.get("email_type"), "campaign_id": doc.get("campaign_id"),
            "locale": doc.get("locale"), "events": []})
        email["events"].append({field: doc.get(field) for field in (
            "@timestamp", "status", "provider", "reason", "bounce_type", "url")
            if doc.get(field) is not None})
    return list(emails.values())


def export(settings: Settings, shop_id: str, address: str) -> dict[str, Any]:
    key = recipient_key(address, settings.pseudonym_secret.encode())
    profiles = profiles_of(settings, shop_id, address)
    user_ids = {p["user_id"] for p in profiles}
    suppression = suppression_of(settings, key)
    return {
        "person": {"email": normalize_address(address), "shop_id": shop_id},
        "exported_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "profiles": profiles,
        "consent_history": consent_history(settings, shop_id, user_ids),
        "suppression": suppression,
        "emails": emails_of(settings, shop_id, key),
        "not_included": "email commands waiting in Kafka (kept until sent, then deleted with "
                        "the topics' retention) and the dead-letter topic (records that "
                        "could not be read, replayed or deleted by operators)",
    }


def erase(settings: Settings, shop_id: str, address: str, requested_by: str = "operator",
          wait_s: float = 120.0) -> list[dict[str, Any]]:
    """Publish an erasure request per profile of the person at the shop (one without a user
    id if there is none: their analytics still go), delete the local mail catcher's copies,
    and return the receipts the worker published."""
    from flowmail.publisher import Publisher
    from streams.topics import ERASURES
    user_ids = sorted({p["user_id"] for p in profiles_of(settings, shop_id, address)}) or [None]
    since = _ends(settings, ERASURES)
    now = dt.datetime.now(dt.UTC)
    requests_ = [{"event_id": str(uuid.uuid4()), "occurred_at": now, "schema_version": 1,
                  "shop_id": shop_id, "user_id": user_id, "email": address,
                  "requested_by": requested_by} for user_id in user_ids]
    with Publisher(settings.kafka_bootstrap) as publisher:
        for request in requests_:
            publisher.publish(ERASURE_REQUESTED.topic, request,
                              key=request["user_id"] or request["event_id"])
    wanted = {r["event_id"] for r in requests_}
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + wait_s
    schemas = registry()
    while wanted - set(found) and time.monotonic() < deadline:
        for value in _values_since(settings, ERASURES, since):
            receipt = schemas.decode(f"{ERASURES}-value", value)
            if receipt["erasure_id"] in wanted:
                found[receipt["erasure_id"]] = receipt
        if wanted - set(found):
            time.sleep(0.5)
    return list(found.values())


def erase_outbox(settings: Settings, address: str) -> int:
    """The local stack's mail catcher keeps every message as a file: the person's go."""
    wanted, removed = normalize_address(address).encode(), 0
    for path in settings.outbox_dir.glob("*.eml") if settings.outbox_dir.is_dir() else []:
        if wanted in path.read_bytes().lower():
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _ends(settings: Settings, topic: str) -> dict[int, int]:
    """Partition -> end offset, of every partition of ``topic``."""
    probe = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                      "group.id": "flowmail-gdpr-probe"})
    try:
        return {p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in probe.list_topics(topic, timeout=10).topics[topic].partitions}
    finally:
        probe.close()


def _values_since(settings: Settings, topic: str, since: dict[int, int]) -> list[bytes]:
    values: list[bytes] = []
    read_to_end(settings.kafka_bootstrap, topic, list(since),
                lambda _p, _k, value: values.append(value) if value else None,
                starts=since)
    return values
