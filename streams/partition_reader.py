"""Read a one-partition topic between a time and an offset (the anomaly detector's window,
the day's alerts for the report)."""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from core.kafka_config import client_config


def read_partition(bootstrap: str, topic: str, since_ms: int | None, until: int | None
          ) -> list[bytes]:
    """Values of the one-partition ``topic`` from ``since_ms`` (None: the start) up to offset
    ``until`` (None: the end)."""
    reader = Consumer(client_config(bootstrap, **{"group.id": f"{topic}-reader",
                                                  "enable.auto.commit": False}))
    try:
        partition = TopicPartition(topic, 0, since_ms if since_ms is not None else 0)
        start = (reader.offsets_for_times([partition], timeout=30)[0].offset
                 if since_ms is not None else 0)
        low, high = reader.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        end = high if until is None else min(until, high)
        start = high if start == OFFSET_END or start < 0 else max(start, low)
        if start >= end:
            return []
        reader.assign([TopicPartition(topic, 0, start)])
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message_ = reader.poll(1.0)
            if message_ is None or message_.error():
                continue
            if message_.offset() >= end:
                break
            values.append(message_.value() or b"")
            if message_.offset() + 1 >= end:
                break
        return values
    finally:
        reader.close()
