"""Create or update topics to match ``topic_specs``: idempotent, grows partitions, never shrinks."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

from core.kafka_config import KAFKA_LOG, admin_config, current_security
from core.kafka_security import KafkaSecurityError, diagnose
from streams.startup import until_ready
from streams.topics import TopicSpec


@dataclass(frozen=True)
class Existing:
    partitions: int
    config: dict[str, str]


@dataclass(frozen=True)
class Change:
    topic: str
    action: str  # create | grow | configure | refuse
    detail: str


def plan(specs: list[TopicSpec], existing: dict[str, Existing]) -> list[Change]:
    """What to do to reach ``specs``; shrinking is refused (Kafka cannot, and keys would move)."""
    changes = []
    for spec in specs:
        current = existing.get(spec.name)
        if current is None:
            changes.append(Change(spec.name, "create",
                                  f"{spec.partitions} partitions, {spec.config()}"))
            continue
        if spec.partitions > current.partitions:
            changes.append(Change(spec.name, "grow", f"{current.partitions} -> {spec.partitions}"
                                  " partitions (keys hash to new partitions from now on)"))
        elif spec.partitions < current.partitions:
            changes.append(Change(spec.name, "refuse",
                                  f"has {current.partitions} partitions, settings ask for "
                                  f"{spec.partitions}: partitions never shrink; raise the setting"))
        drift = {k: v for k, v in spec.config().items() if current.config.get(k) != v}
        if drift:
            changes.append(Change(spec.name, "configure", ", ".join(
                f"{k}: {current.config.get(k)} -> {v}" for k, v in sorted(drift.items()))))
    return changes


class _Listening:
    """librdkafka's log lines go to flowmail.kafka as before, and are kept for ``refusal``:
    some refusals (a plaintext client on a TLS port) are told there and nowhere else."""

    def __init__(self, heard: deque[str]) -> None:
        self.heard = heard

    def log(self, level: int, message: str, *args: object) -> None:
        self.heard.append(message % args if args else message)
        KAFKA_LOG.log(level, message, *args)


class TopicAdmin:
    """The first client a worker or command creates: it also says, in words naming the
    setting to change, why a secured cluster refuses it (wrong password, untrusted
    certificate, TLS spoken to a plaintext port and the reverse) instead of retrying until
    the start-up timeout."""

    def __init__(self, bootstrap: str, replication_factor: int) -> None:
        self.bootstrap = bootstrap
        self.heard: deque[str] = deque(maxlen=200)
        self.admin = AdminClient(admin_config(bootstrap, error_cb=self._heard,
                                              logger=_Listening(self.heard)))
        self.replication_factor = replication_factor

    def _heard(self, error: KafkaError) -> None:
        self.heard.append(error.str())

    def refusal(self) -> str | None:
        """Why the cluster refuses this client's security settings, if it does (from what
        librdkafka reported: its errors and log lines, served by a poll)."""
        self.admin.poll(0)
        return diagnose(list(self.heard), self.bootstrap, current_security())

    def describe(self, names: list[str]) -> dict[str, Existing]:
        metadata = self.admin.list_topics(timeout=10)
        present = [n for n in names if n in metadata.topics]
        if not present:
            return {}
        resources = [ConfigResource(ConfigResource.Type.TOPIC, n) for n in present]
        configs = {}
        for resource, future in self.admin.describe_configs(resources).items():
            entries = future.result(timeout=10)
            configs[resource.name] = {k: e.value for k, e in entries.items()}
        return {n: Existing(len(metadata.topics[n].partitions), configs[n]) for n in present}

    def apply(self, specs: list[TopicSpec], timeout_s: float = 120.0) -> list[Change]:
        """Create, grow or reconfigure topics to match ``specs``; a broker still starting is
        waited for (the plan is made again on each try, so a half-done try is finished)."""
        def once() -> list[Change]:
            try:
                return self._apply_once(specs)
            except KafkaException:
                refused = self.refusal()
                if refused:
                    raise KafkaSecurityError(refused) from None
                raise

        return until_ready(once, "applying the topic plan", timeout_s)

    def _apply_once(self, specs: list[TopicSpec]) -> list[Change]:
        by_name = {s.name: s for s in specs}
        changes = plan(specs, self.describe(list(by_name)))
        futures = {}
        creates = [NewTopic(c.topic, by_name[c.topic].partitions, self.replication_factor,
                            config=by_name[c.topic].config())
                   for c in changes if c.action == "create"]
        if creates:
            futures.update(self.admin.create_topics(creates, operation_timeout=30))
        grows = [NewPartitions(c.topic, by_name[c.topic].partitions)
                 for c in changes if c.action == "grow"]
        if grows:
            futures.update(self.admin.create_partitions(grows, operation_timeout=30))
        for change in (c for c in changes if c.action == "configure"):
            entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                       for k, v in by_name[change.topic].config().items()]
            resource = ConfigResource(ConfigResource.Type.TOPIC, change.topic,
                                      incremental_configs=entries)
            futures.update(self.admin.incremental_alter_configs([resource]))
        for future in futures.values():
            try:
                future.result(timeout=30)
            except KafkaException as err:
                if "TOPIC_ALREADY_EXISTS" not in str(err):
                    raise
        self.wait_for_leaders([c.topic for c in changes if c.action in {"create", "grow"}])
        return changes

    def wait_for_leaders(self, names: list[str], timeout_s: float = 60.0) -> None:
        """Return once every partition of ``names`` answers a ListOffsets from its leader.

        Metadata can name a leader a moment before that broker serves the partition; clients
        that start right after ``topics apply`` would then see NOT_LEADER_FOR_PARTITION.
        """
        deadline = time.monotonic() + timeout_s
        waiting = list(names)
        while waiting:
            waiting = [name for name in waiting if not self._serves(name)]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not served by a leader after {timeout_s:.0f}s: "
                                   f"{waiting[:5]}")
            time.sleep(0.2)

    def _serves(self, name: str) -> bool:
        topic = self.admin.list_topics(name, timeout=10).topics.get(name)
        if topic is None or topic.error is not None or not topic.partitions:
            return False
        request = {TopicPartition(name, p): OffsetSpec.latest() for p in topic.partitions}
        try:
            for future in self.admin.list_offsets(request, request_timeout=10).values():
                future.result()
        except KafkaException:
            return False
        return True
