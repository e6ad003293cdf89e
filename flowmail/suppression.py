"""Adding and lifting suppressions: the CLI, the unsubscribe endpoint, and later webhooks."""

from __future__ import annotations

import json
import logging
import time

from confluent_kafka import Producer

from processors.keys import recipient_key
from streams.agents.suppressions import REASONS
from streams.topics import SUPPRESSIONS


def publish_suppression(bootstrap: str, key: str, reason: str | None) -> None:
    """``reason`` None lifts it (a tombstone in the compacted topic)."""
    if reason is not None and reason not in REASONS:
        raise ValueError(f"reason must be one of {sorted(REASONS)}")
    value = json.dumps({"reason": reason, "at": int(time.time() * 1000)}).encode() \
        if reason else None
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "logger": logging.getLogger("flowmail.kafka")})
    failures: list[str] = []
    producer.produce(SUPPRESSIONS, key=key.encode(), value=value,
                     on_delivery=lambda err, _m: failures.append(str(err)) if err else None)
    producer.flush(30)
    if failures:
        raise RuntimeError(f"suppression not stored: {failures[0]}")


def suppress_address(bootstrap: str, address: str, secret: str, reason: str | None) -> str:
    key = recipient_key(address, secret.encode())
    publish_suppression(bootstrap, key, reason)
    return key
