"""The one place flowmail's confluent-kafka producers get their configuration.

Partitioning: Faust and aiokafka place a key with murmur2 (Java's partitioner); librdkafka's
default is CRC32. Every topic flowmail keys by recipient or user is co-partitioned with a
Faust table, so every producer of such a topic must use murmur2 as well, or a suppression
lands on a partition whose worker never sees that recipient's commands.
"""

from __future__ import annotations

import logging
from typing import Any

KAFKA_LOG = logging.getLogger("flowmail.kafka")
# librdkafka's name for Java's murmur2 (random only for null keys, which flowmail never uses)
PARTITIONER = "murmur2_random"
PREFETCH_KIB = 2048


def producer_config(bootstrap: str, **overrides: Any) -> dict[str, Any]:
    """Idempotent, acks=all, murmur2 placement; ``overrides`` tune batching."""
    return {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "partitioner": PARTITIONER, "logger": KAFKA_LOG, **overrides}


def consumer_config(bootstrap: str, group: str, **overrides: Any) -> dict[str, Any]:
    """Commits only by hand, after the batch's writes are acknowledged (at least once);
    a group with no committed offset starts at the earliest record, as Faust's does.

    Prefetch: librdkafka keeps up to 64 MiB fetched ahead per consumer by default, and a
    worker process has six; behind a million-command backlog that was most of its memory.
    2 MiB is a thousand commands or more, what a batch takes."""
    return {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
            "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "queued.max.messages.kbytes": PREFETCH_KIB, "logger": KAFKA_LOG, **overrides}
