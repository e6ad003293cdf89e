"""Topic administration against the real broker: create, grow, refuse to shrink, fix config."""

import uuid

from streams.topic_admin import TopicAdmin
from streams.topics import TopicSpec


def test_create_grow_configure_and_refuse_shrink(stack, settings):
    admin = TopicAdmin(settings.kafka_bootstrap, replication_factor=1)
    name = f"scratch.admin.{uuid.uuid4().hex[:8]}"
    spec = TopicSpec(name, 2, "scratch", retention_ms=60_000)
    assert [c.action for c in admin.apply([spec])] == ["create"]
    assert admin.apply([spec]) == []

    grown = TopicSpec(name, 4, "scratch", retention_ms=120_000)
    assert sorted(c.action for c in admin.apply([grown])) == ["configure", "grow"]
    assert admin.describe([name])[name].partitions == 4
    assert admin.describe([name])[name].config["retention.ms"] == "120000"

    shrunk = TopicSpec(name, 1, "scratch", retention_ms=120_000)
    [refusal] = admin.apply([shrunk])
    assert refusal.action == "refuse"
    assert admin.describe([name])[name].partitions == 4


def test_compacted_topics_are_compacted(stack, settings):
    admin = TopicAdmin(settings.kafka_bootstrap, replication_factor=1)
    described = admin.describe(["email.suppressions", "flowmail-test-ledger_critical-changelog",
                                "email.dlq", "user.profiles"])
    assert described["user.profiles"].config["cleanup.policy"] == "compact"
    # suppression *changes* are kept forever: compaction would drop all but one scope of a key
    assert described["email.suppressions"].config["cleanup.policy"] == "delete"
    assert described["email.suppressions"].config["retention.ms"] == "-1"
    assert described["email.dlq"].config["cleanup.policy"] == "delete"


def test_a_backlog_counts_what_a_group_has_not_committed(stack, settings):
    """What holds unthrottled campaigns back (FLOWMAIL_CAMPAIGN_LEAD): end offsets minus the
    group's commits, over every partition; a partition never committed counts whole."""
    from confluent_kafka import Consumer, Producer, TopicPartition

    from streams.groups import Backlog
    name = f"test-backlog-{uuid.uuid4().hex[:8]}"
    TopicAdmin(settings.kafka_bootstrap, 1).apply([TopicSpec(name, 3, "test")])
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for index in range(30):
        producer.produce(name, value=b"x", partition=index % 3)
    assert producer.flush(30) == 0
    group = f"{name}-group"
    backlog = Backlog(settings.kafka_bootstrap, group, name)
    try:
        assert backlog.count() == 30
        committer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                              "enable.auto.commit": False})
        committer.commit(offsets=[TopicPartition(name, 0, 10), TopicPartition(name, 1, 4)],
                         asynchronous=False)
        committer.close()
        assert backlog.count() == 30 - 10 - 4
    finally:
        backlog.close()
