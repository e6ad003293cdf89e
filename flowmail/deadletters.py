"""Reading and replaying ``email.dlq``: ``flowmail dlq inspect`` and ``flowmail dlq replay``."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from core.kafka_config import client_config, producer_config
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

    @property
    def size(self) -> int:
        """The original record's size (a truncated letter keeps only a prefix)."""
        original = self.header("original_size")
        return int(original) if original.isdigit() else len(self.value)

    def summary(self) -> str:
        """One line without the payload (it may hold personal data)."""
        failed = self.header("failed_at")
        when = (dt.datetime.fromtimestamp(int(failed) / 1000, tz=dt.UTC).isoformat(
            timespec="seconds") if failed.isdigit() else "?")
        source = (f"{self.header('source_topic')}[{self.header('source_partition')}]"
                  f"@{self.header('source_offset')}")
        return (f"{self.offset:>8}  {when}  {self.header('stage'):<22} "
                f"{self.header('reason'):<18} {source:<40} {self.size:>7} B  "
                f"{self.header('detail')[:120]}")


def read(bootstrap: str, start: int = 0, limit: int | None = None) -> Iterator[DeadLetter]:
    """Dead letters from ``start`` to the current end of the (single-partition) DLQ."""
    consumer = Consumer(client_config(bootstrap) | {"group.id": "flowmail-dlq-tools",
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


class ReplayRefused(RuntimeError):
    """A dead letter cannot be replayed; the message says why and what to do."""


def original(bootstrap: str, letter: DeadLetter) -> tuple[bytes | None, bytes]:
    """The record's original key and value: the letter's own, or, for a truncated or minimal
    letter, fetched from its source coordinates while the source topic still retains it."""
    if letter.header("truncated") != "true" and letter.header("minimal") != "true":
        return letter.key, letter.value
    topic, partition = letter.header("source_topic"), letter.header("source_partition")
    offset = letter.header("source_offset")
    where = f"{topic}[{partition}]@{offset}"
    if not (topic and partition.isdigit() and offset.isdigit()):
        raise ReplayRefused(f"dead letter {letter.offset} is truncated and names no source")
    consumer = Consumer(client_config(bootstrap) | {"group.id": "flowmail-dlq-tools",
                         "enable.auto.commit": False, "logger": QUIET,
                         "fetch.max.bytes": 64 * 1024 * 1024,
                         "max.partition.fetch.bytes": 64 * 1024 * 1024})
    try:
        source = TopicPartition(topic, int(partition), int(offset))
        low, _ = consumer.get_watermark_offsets(source, timeout=10)
        if int(offset) < low:
            raise ReplayRefused(f"dead letter {letter.offset}: the original at {where} is gone "
                                f"(retention deleted offsets below {low}); it cannot be "
                                "replayed, only re-published by its producer")
        consumer.assign([source])
        message = consumer.poll(10.0)
    finally:
        consumer.close()
    if message is None or message.error() or message.offset() != int(offset):
        raise ReplayRefused(f"dead letter {letter.offset}: could not read {where}")
    value = message.value() or b""
    expected = letter.header("original_sha256")
    if expected and hashlib.sha256(value).hexdigest() != expected:
        raise ReplayRefused(f"dead letter {letter.offset}: {where} holds other bytes than "
                            "the dead letter recorded (sha256 differs)")
    return message.key(), value


def replay(bootstrap: str, letters: list[DeadLetter]) -> int:
    """Publish each letter's original key and bytes to its source topic again."""
    originals = [(letter, *original(bootstrap, letter)) for letter in letters]
    largest = max((len(v) for _, _, v in originals), default=0)
    producer = Producer(producer_config(
        bootstrap, **{"message.max.bytes": max(1_000_000, largest + 64 * 1024)}))
    failures: list[str] = []
    for letter, key, value in originals:
        topic = letter.header("source_topic")
        if not topic:
            raise ValueError(f"dead letter at offset {letter.offset} has no source topic header")
        producer.produce(topic, key=key, value=value,
                         headers=[(HEADER_PREFIX + "replayed_from", f"{DLQ}@{letter.offset}"
                                   .encode())],
                         on_delivery=lambda err, _m: failures.append(str(err)) if err else None)
    if producer.flush(30):
        raise RuntimeError("replays not acknowledged by Kafka within 30s; nothing is lost: "
                           "run the replay again (the pipeline skips what was already sent)")
    if failures:
        raise RuntimeError(f"{len(failures)} replays refused: {failures[:3]}")
    return len(letters)
