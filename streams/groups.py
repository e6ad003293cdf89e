"""Consumer-group positioning: where a brand-new group starts reading."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from core.kafka_config import client_config
from streams.startup import until_ready

QUIET = logging.getLogger("flowmail.kafka")
# The worker's earlier Faust groups: ``<app id>`` and its former "bulk" lane's. A batch
# stage's new group adopts the furthest offset any of them committed (no skip, no resend).
EARLIER_GROUP_SUFFIXES = ("", "-bulk")


def earlier_groups(app_id: str) -> list[str]:
    return [app_id + suffix for suffix in EARLIER_GROUP_SUFFIXES]


def group_is_new(bootstrap: str, group: str, topics: list[str], timeout_s: float = 120.0
                 ) -> bool:
    """True when ``group`` has committed no offset on any partition of ``topics``."""
    return until_ready(lambda: _group_is_new(bootstrap, group, topics),
                       f"reading the committed offsets of group {group}", timeout_s)


def _group_is_new(bootstrap: str, group: str, topics: list[str]) -> bool:
    return not _committed(bootstrap, group, topics)


def _committed(bootstrap: str, group: str, topics: list[str]) -> list[TopicPartition]:
    """The offsets ``group`` has committed on the partitions of ``topics`` that exist."""
    consumer = Consumer(client_config(bootstrap) | {"group.id": group, "logger": QUIET,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10).topics
        partitions = [TopicPartition(t, p) for t in topics if t in metadata
                      for p in metadata[t].partitions]
        committed = consumer.committed(partitions, timeout=10) if partitions else []
        return [tp for tp in committed if tp.offset >= 0]
    finally:
        consumer.close()


def start_group_at_end(bootstrap: str, group: str, topics: list[str],
                       timeout_s: float = 120.0) -> None:
    """Commit the current end offsets for ``group`` on every partition it has no offset for:
    it will read only what is published next there.

    A new Faust app id otherwise starts at the earliest retained record and would send again
    every email still in retention (its idempotency ledger is empty). The group must have no
    running members; a member that died without leaving holds it until its session expires,
    and a broker that just started may still be loading its coordinator: both are retried
    until ``timeout_s``.
    """
    until_ready(lambda: _commit_end(bootstrap, group, topics),
                f"positioning group {group} at the end of its topics", timeout_s, pause_s=1.0)


def adopt_offsets(bootstrap: str, source: str | list[str], target: str, topics: list[str],
                  timeout_s: float = 120.0) -> int:
    """Give the new group ``target`` the offsets ``source`` committed on ``topics`` (a lane
    split off a worker continues where the worker stopped); of several sources, the furthest
    offset of each partition. Returns how many partitions it took over."""
    sources = [source] if isinstance(source, str) else source
    return until_ready(lambda: _adopt(bootstrap, sources, target, topics),
                       f"giving group {target} the offsets of {', '.join(sources)}", timeout_s)


def _adopt(bootstrap: str, sources: list[str], target: str, topics: list[str]) -> int:
    furthest: dict[tuple[str, int], TopicPartition] = {}
    for source in sources:
        for tp in _committed(bootstrap, source, topics):
            known = furthest.get((tp.topic, tp.partition))
            if known is None or tp.offset > known.offset:
                furthest[(tp.topic, tp.partition)] = tp
    committed = list(furthest.values())
    if not committed:
        return 0
    writer = Consumer(client_config(bootstrap) | {"group.id": target, "logger": QUIET,
                       "enable.auto.commit": False})
    try:
        writer.commit(offsets=committed, asynchronous=False)
    except KafkaException as err:
        if err.args[0].code() in _GROUP_HAS_MEMBERS:
            # another process of the worker joined first, and it adopted before joining
            return 0
        raise
    finally:
        writer.close()
    return len(committed)


# a commit from outside refused because the group has members now
_GROUP_HAS_MEMBERS = {KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
                      KafkaError.REBALANCE_IN_PROGRESS}


def _commit_end(bootstrap: str, group: str, topics: list[str]) -> None:
    consumer = Consumer(client_config(bootstrap) | {"group.id": group, "logger": QUIET,
                         "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=10).topics
        partitions = [TopicPartition(t, p) for t in topics if t in metadata
                      for p in metadata[t].partitions]
        held = {(tp.topic, tp.partition) for tp in consumer.committed(partitions, timeout=10)
                if tp.offset >= 0} if partitions else set()
        offsets = []
        for topic in (t for t in topics if t in metadata):
            for partition in metadata[topic].partitions:
                if (topic, partition) in held:
                    continue  # positioned already (adopted from the worker's group)
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                         timeout=10)
                offsets.append(TopicPartition(topic, partition, high))
        if offsets:
            consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int  # -1: nothing committed yet
    end: int

    @property
    def lag(self) -> int:
        """Records written and not yet committed by the group (all of them without a commit
        since the start of what the topic still holds)."""
        return max(0, self.end - max(self.committed, 0))


def group_lag(bootstrap: str, prefix: str, timeout_s: float = 30.0) -> list[PartitionLag]:
    """Every partition each consumer group named ``prefix`` or ``prefix-*`` has committed
    offsets on, with the end offset now (what ``flowmail lag`` prints)."""
    admin = AdminClient(client_config(bootstrap, **{"logger": QUIET}))
    listed = admin.list_consumer_groups(request_timeout=timeout_s).result(timeout=timeout_s)
    names = sorted(g.group_id for g in listed.valid
                   if g.group_id == prefix or g.group_id.startswith(prefix + "-"))
    consumer = Consumer(client_config(bootstrap, **{"group.id": f"{prefix}-lag-probe",
                                                    "logger": QUIET}))
    rows = []
    try:
        for name in names:
            future = admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(name)], request_timeout=timeout_s)[name]
            for tp in future.result(timeout=timeout_s).topic_partitions:
                _, end = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition),
                                                        timeout=timeout_s)
                rows.append(PartitionLag(name, tp.topic, tp.partition, tp.offset, end))
    finally:
        consumer.close()
    return sorted(rows, key=lambda r: (r.group, r.topic, r.partition))


class Backlog:
    """Records of ``topic`` that ``group`` has not committed yet, over every partition.
    Asks with a consumer of that group id that never subscribes and never commits (the
    group's members are not disturbed)."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self.topic = topic
        self._consumer = Consumer(client_config(bootstrap) | {"group.id": group,
                                                              "logger": QUIET})
        self._partitions: list[int] = []

    def count(self, timeout_s: float = 10.0) -> int:
        if not self._partitions:
            found = self._consumer.list_topics(self.topic, timeout=timeout_s).topics[self.topic]
            self._partitions = sorted(found.partitions)
        committed = self._consumer.committed(
            [TopicPartition(self.topic, p) for p in self._partitions], timeout=timeout_s)
        waiting = 0
        for tp in committed:
            low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout_s)
            waiting += max(0, high - (tp.offset if tp.offset >= 0 else low))
        return waiting

    def close(self) -> None:
        self._consumer.close()
