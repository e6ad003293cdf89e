"""Consumer-group positioning: where a brand-new group starts reading."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

QUIET = logging.getLogger("flowmail.kafka")


def group_is_new(bootstrap: str, group: str, topics: list[str]) -> bool:
    """True when ``group`` has committed no offset on any partition of ``topics``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "logger": QUIET,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10).topics
        partitions = [TopicPartition(t, p) for t in topics if t in metadata
                      for p in metadata[t].partitions]
        committed = consumer.committed(partitions, timeout=10) if partitions else []
        return all(tp.offset < 0 for tp in committed)
    finally:
        consumer.close()


def start_group_at_end(bootstrap: str, group: str, topics: list[str],
                       timeout_s: float = 120.0) -> None:
    """Commit the current end offsets for ``group``: it will read only what is published next.

    A new Faust app id otherwise starts at the earliest retained record and would send again
    every email still in retention (its idempotency ledger is empty). The group must have no
    running members; a member that died without leaving holds it until its session expires,
    so this retries until ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _commit_end(bootstrap, group, topics)
            return
        except KafkaException as err:
            retriable = err.args[0].code() in {KafkaError.UNKNOWN_MEMBER_ID,
                                               KafkaError.REBALANCE_IN_PROGRESS,
                                               KafkaError.ILLEGAL_GENERATION}
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _commit_end(bootstrap: str, group: str, topics: list[str]) -> None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "logger": QUIET,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10).topics
        offsets = []
        for topic in (t for t in topics if t in metadata):
            for partition in metadata[topic].partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                         timeout=10)
                offsets.append(TopicPartition(topic, partition, high))
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()
