"""Adding and lifting suppressions: the CLI, the unsubscribe endpoint, and later webhooks.

Each call publishes one *change* (a scope added or lifted) keyed by the recipient key, with
murmur2 placement like Faust's, so it lands on the partition whose worker sends that
recipient's mail; the suppressions agent merges it into the recipient's entry.
"""

from __future__ import annotations

import json
import time

from confluent_kafka import Producer

from core.kafka_config import producer_config
from core.vocab import Category, SuppressionReason
from processors.keys import recipient_key
from processors.suppression import change, scope_for
from processors.validation import deliverable_address
from streams.topics import SUPPRESSIONS


class SuppressionNotStored(RuntimeError):
    """Kafka did not acknowledge the change; nothing may be assumed suppressed."""


def publish_change(bootstrap: str, key: str, reason: SuppressionReason | None, scope: str,
                   source: str, timeout_s: float = 30.0) -> None:
    """Publish one change and wait for the broker's acknowledgement."""
    value = json.dumps(change(reason, scope, int(time.time() * 1000), source)).encode()
    producer = Producer(producer_config(bootstrap))
    failures: list[str] = []
    producer.produce(SUPPRESSIONS, key=key.encode(), value=value,
                     on_delivery=lambda err, _m: failures.append(err.str()) if err else None)
    if producer.flush(timeout_s):
        raise SuppressionNotStored(f"suppression not acknowledged by Kafka within {timeout_s}s")
    if failures:
        raise SuppressionNotStored(f"suppression not stored: {failures[0]}")


def suppress_address(bootstrap: str, address: str, secret: str,
                     reason: SuppressionReason | None, shop_id: str | None = None,
                     category: Category | None = None, source: str = "cli") -> tuple[str, str]:
    """(recipient key, scope). ``reason`` None lifts the scope that reason would have had
    (``manual`` rules for --lift: the shop and category given)."""
    address = deliverable_address("address", address)
    scope = scope_for(reason or SuppressionReason.MANUAL, shop_id, category)
    key = recipient_key(address, secret.encode())
    publish_change(bootstrap, key, reason, scope, source)
    return key, scope
