"""The one place flowmail's confluent-kafka producers get their configuration.

Partitioning: Faust and aiokafka place a key with murmur2 (Java's partitioner); librdkafka's
default is CRC32. Every topic flowmail keys by recipient or user is co-partitioned with a
Faust table, so every producer of such a topic must use murmur2 as well, or a suppression
lands on a partition whose worker never sees that recipient's commands.
"""

from __future__ import annotations

import logging
from typing import Any

from core.kafka_security import KafkaSecurity, security_of

KAFKA_LOG = logging.getLogger("flowmail.kafka")
# librdkafka's name for Java's murmur2 (random only for null keys, which flowmail never uses)
PARTITIONER = "murmur2_random"
PREFETCH_KIB = 2048


_security: KafkaSecurity | None = None


def use_security(security: KafkaSecurity | None) -> None:
    """The security every client of this process gets (None: read FLOWMAIL_KAFKA_* again)."""
    global _security
    _security = security


def current_security() -> KafkaSecurity:
    """What ``use_security`` set, else the ``FLOWMAIL_KAFKA_*`` settings, read once."""
    global _security
    if _security is None:
        from core.settings import load_settings
        _security = security_of(load_settings())
    return _security


def client_config(bootstrap: str, security: KafkaSecurity | None = None,
                  **overrides: Any) -> dict[str, Any]:
    """Every confluent-kafka client flowmail creates starts here: the bootstrap servers and
    the cluster's security (TLS, SASL), then the client's own settings."""
    return {"bootstrap.servers": bootstrap,
            **(security or current_security()).librdkafka(), **overrides}


def producer_config(bootstrap: str, security: KafkaSecurity | None = None,
                    **overrides: Any) -> dict[str, Any]:
    """Idempotent, acks=all, murmur2 placement; ``overrides`` tune batching."""
    return client_config(bootstrap, security, **{
        "enable.idempotence": True, "acks": "all", "partitioner": PARTITIONER,
        "logger": KAFKA_LOG, **overrides})


def admin_config(bootstrap: str, security: KafkaSecurity | None = None,
                 **overrides: Any) -> dict[str, Any]:
    return client_config(bootstrap, security, **{"logger": KAFKA_LOG, **overrides})


def consumer_config(bootstrap: str, group: str, **overrides: Any) -> dict[str, Any]:
    """Commits only by hand, after the batch's writes are acknowledged (at least once);
    a group with no committed offset starts at the earliest record, as Faust's does.

    Prefetch: librdkafka keeps up to 64 MiB fetched ahead per consumer by default, and a
    worker process has six; behind a million-command backlog that was most of its memory.
    2 MiB is a thousand commands or more, what a batch takes."""
    return client_config(bootstrap, None, **{
        "group.id": group, "enable.auto.commit": False, "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest", "queued.max.messages.kbytes": PREFETCH_KIB,
        "logger": KAFKA_LOG, **overrides})
