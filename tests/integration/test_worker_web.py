"""The worker's web endpoints and consumer-group positioning."""

import os
import uuid

import requests

from streams.groups import group_is_new, start_group_at_end
from tests.integration.helpers import end_offsets


def test_ready_health_and_metrics(worker, settings):
    base = f"http://127.0.0.1:{settings.web_port}"
    assert requests.get(f"{base}/ready", timeout=5).json() == {"ready": True}
    # `flowmail worker` runs one full worker per core (flowmail/supervisor.py), each on its
    # own port
    for index in range(os.cpu_count() or 1):
        health = requests.get(f"http://127.0.0.1:{settings.web_port + index}/health",
                              timeout=5).json()
        assert health["agents"] == ["router", "sender", "sink"]
        assert health["priorities"] == ["critical", "transactional", "marketing"]
    metrics = requests.get(f"{base}/metrics", timeout=5).text
    assert "flowmail_deliveries_total" in metrics
    assert "# TYPE flowmail_end_to_end_seconds histogram" in metrics


def test_a_new_group_can_start_at_the_end(stack, settings):
    from confluent_kafka import Consumer, TopicPartition
    group = f"flowmail-new-{uuid.uuid4().hex[:6]}"
    assert group_is_new(settings.kafka_bootstrap, group, ["order.placed"])
    start_group_at_end(settings.kafka_bootstrap, group, ["order.placed"])
    assert not group_is_new(settings.kafka_bootstrap, group, ["order.placed"])
    ends = end_offsets(settings.kafka_bootstrap, "order.placed")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group})
    committed = consumer.committed([TopicPartition("order.placed", p) for p in ends], timeout=10)
    consumer.close()
    assert {tp.partition: tp.offset for tp in committed} == ends


def test_a_new_lane_group_continues_where_the_workers_group_stopped(stack, settings):
    from confluent_kafka import Consumer, TopicPartition

    from streams.groups import adopt_offsets
    base, lane = f"flowmail-base-{uuid.uuid4().hex[:6]}", f"flowmail-lane-{uuid.uuid4().hex[:6]}"
    start_group_at_end(settings.kafka_bootstrap, base, ["email.marketing"])
    assert adopt_offsets(settings.kafka_bootstrap, base, lane, ["email.marketing"]) == \
        settings.partitions_email
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": lane})
    committed = consumer.committed([TopicPartition("email.marketing", p)
                                    for p in range(settings.partitions_email)], timeout=10)
    consumer.close()
    assert {tp.partition: tp.offset for tp in committed} == end_offsets(
        settings.kafka_bootstrap, "email.marketing")
    assert adopt_offsets(settings.kafka_bootstrap, f"never-{uuid.uuid4().hex[:6]}", lane,
                         ["email.marketing"]) == 0


def test_a_new_group_takes_the_furthest_offset_of_the_groups_it_replaces(stack, settings):
    """A batch stage's group adopts from the worker's earlier groups (streams/groups.py)."""
    from confluent_kafka import Consumer, TopicPartition

    from streams.groups import adopt_offsets
    behind, ahead = (f"flowmail-old-{uuid.uuid4().hex[:6]}" for _ in range(2))
    new = f"flowmail-new-{uuid.uuid4().hex[:6]}"
    partitions = [TopicPartition("email.marketing", p) for p in range(settings.partitions_email)]
    writer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": behind})
    writer.commit(offsets=[TopicPartition(tp.topic, tp.partition, 0) for tp in partitions],
                  asynchronous=False)
    writer.close()
    start_group_at_end(settings.kafka_bootstrap, ahead, ["email.marketing"])
    assert adopt_offsets(settings.kafka_bootstrap, [behind, ahead], new,
                         ["email.marketing"]) == settings.partitions_email
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": new})
    committed = consumer.committed(partitions, timeout=10)
    consumer.close()
    assert {tp.partition: tp.offset for tp in committed} == end_offsets(
        settings.kafka_bootstrap, "email.marketing")
