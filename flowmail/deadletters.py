"""Reading and replaying ``email.dlq``: ``flowmail dlq inspect`` and ``flowmail dlq replay``."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from flowmail.kafka_config import producer_config
from streams.dlq import HEADER_PREFIX
from streams.topics import DLQ

QUIET = logging.getLogger("flowmail.kafka")


@dataclass(frozen=True)
class DeadLetter:
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    def header(self, name: str) -> str:
        return self.headers.get(HEADER_PREFIX + name, "")

    def summary(self) -> str:
        """One line without the payload (it may hold personal data)."""
        failed = self.header("failed_at")
        when = (dt.datetime.fromtimestamp(int(failed) / 1000, tz=dt.UTC).isoformat(
            timespec="seconds") if failed.isdigit() else "?")
        source = (f"{self.header('source_topic')}[{self.header('source_partition')}]"
                  f"@{self.header('source_offset')}")
        return (f"{self.offset:>8}  {when}  {self.header('stage'):<22} "
                f"{self.header('reason'):<18} {source:<40} {len(self.value):>7} B  "
                f"{self.header('detail')[:120]}")


def read(bootstrap: str, start: int = 0, limit: int | None = None) -> Iterator[DeadLetter]:
    """Dead letters from ``start`` to the current end of the (single-partition) DLQ."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "flowmail-dlq-tools",
                         "enable.auto.commit": False, "logger": QUIET})
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(DLQ, 0), timeout=10)
        if start >= end:
            return
        consumer.assign([TopicPartition(DLQ, 0, start)])
        seen = 0
        while limit is None or seen < limit:
            message = consumer.poll(5.0)
            if message is None:
                break
            if message.error():
                continue
            headers = {k: v.decode("utf-8", "replace") for k, v in (message.headers() or [])}
            yield DeadLetter(message.offset(), message.key(), message.value() or b"", headers)
            seen += 1
            if message.offset() + 1 >= end:
                break
    finally:
        consumer.close()


def replay(bootstrap: str, letters: list[DeadLetter]) -> int:
    """Publish each letter's original key and bytes to its source topic again."""
    producer = Producer(producer_config(bootstrap))
    failures: list[str] = []
    for letter in letters:
        topic = letter.header("source_topic")
        if not topic:
            raise ValueError(f"dead letter at offset {letter.offset} has no source topic header")
        producer.produce(topic, key=letter.key, value=letter.value,
                         headers=[(HEADER_PREFIX + "replayed_from", f"{DLQ}@{letter.offset}"
                                   .encode())],
                         on_delivery=lambda err, _m: failures.append(str(err)) if err else None)
    if producer.flush(30):
        raise RuntimeError("replays not acknowledged by Kafka within 30s; nothing is lost: "
                           "run the replay again (the pipeline skips what was already sent)")
    if failures:
        raise RuntimeError(f"{len(failures)} replays refused: {failures[:3]}")
    return len(letters)
