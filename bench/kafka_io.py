"""The two Kafka chores every benchmark part shares: producing through a full local queue,
and deleting the topics a run made."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from core.kafka_config import admin_config


def produce_waiting(producer: Producer, topic: str, key: bytes, value: bytes | None,
                    **options: Any) -> None:
    """``produce``, serving delivery reports while librdkafka's local queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value, **options)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.05)


def delete_topics(bootstrap: str, names: list[str]) -> None:
    """Best effort: a topic already gone, or left behind, harms no later run."""
    admin = AdminClient(admin_config(bootstrap))
    for future in admin.delete_topics(names, operation_timeout=30).values():
        try:
            future.result()
        except Exception:  # noqa: BLE001, S110 - see the docstring
            pass
