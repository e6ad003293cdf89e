"""confluent-kafka under the per-email stages: records taken in batches, writes awaited as one
batch. Faust's per-event Stream costs 0.3-0.5 ms of CPU per record; this costs ~0.01 ms
(docs/performance.md, "The batch engine")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, Message, Producer

from core.kafka_config import producer_config
from streams.topics import DLQ

log = logging.getLogger(__name__)

RETRY_CAP_S = 30.0


class SourceRecord(NamedTuple):
    """Where a record came from and what it held (what a dead letter keeps). A named tuple:
    one is made for every record consumed, and a frozen dataclass's __init__ cost three
    times as much."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None

    @classmethod
    def of(cls, message: Message) -> SourceRecord:
        return cls(message.topic(), message.partition(), message.offset(),
                   message.timestamp()[1], message.key(), message.value(), message.headers())


class DeliveryFailed(Exception):
    """The broker refused a write for good (e.g. larger than it accepts)."""


@dataclass
class Failed:
    """A write the broker did not take: what it held, to produce again or to report."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    partition: int | None
    timestamp: int | None
    error: KafkaError


LINGER_MS = 100


class BatchProducer:
    """``produce`` buffers; ``flush`` returns once the broker acknowledged every write since
    the last flush, re-producing any a transient broker failure dropped (never losing one).

    Linger: every stage flushes at the end of its batch, and librdkafka's flush sends what
    waits at once, whatever ``linger.ms`` says. So a long linger costs no latency; it makes
    a batch's writes one produce request instead of one every few milliseconds while the
    batch is sent (with 5 ms, the broker's CPU per email was a fifth of the whole).

    Delivery reports come only for failures (``delivery.report.only.error``), to one
    callback of the producer: a flush that leaves nothing in librdkafka's queue has every
    earlier write acknowledged. A callback and a record of each write cost a worker
    about 2 µs a write, five writes an email (docs/performance.md, fifteenth session)."""

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._failed: list[Failed] = []  # appended by the callback, in the flush's thread
        self._producer = Producer(producer_config(
            bootstrap, **{"linger.ms": LINGER_MS, "batch.num.messages": 10000,
                          "compression.type": "lz4", "delivery.report.only.error": True,
                          "on_delivery": self._report, **overrides}))
        self._unflushed = 0  # writes produced since the last flush began
        self._flushing = asyncio.Lock()  # a flush waits for one already under way

    def _report(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            return
        stamp_type, stamp = message.timestamp()
        partition = message.partition()
        self._failed.append(Failed(
            message.topic() or "", message.key(), message.value(), message.headers(),
            partition if partition >= 0 else None,
            stamp if stamp_type == TIMESTAMP_CREATE_TIME else None, error))

    def produce(self, topic: str, key: bytes | None, value: bytes | None,
                headers: list[tuple[str, bytes]] | None = None,
                partition: int | None = None, timestamp: int | None = None) -> None:
        """``timestamp``: ms since the epoch (default: now)."""
        self._unflushed += 1
        while True:
            try:
                if headers is None and partition is None and not timestamp:
                    self._producer.produce(topic, value, key)
                else:
                    self._producer.produce(topic, value, key, **_options(
                        headers, partition, timestamp))
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)

    async def flush(self, refused: list[Failed] | None = None) -> None:
        """Wait for every acknowledgement. A write refused for good (the broker will never
        take it) is handed back in ``refused`` when given, else raised; a transient failure
        is produced again with backoff, for as long as it takes."""
        async with self._flushing:
            await self._flush(refused)

    async def _flush(self, refused: list[Failed] | None) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.5
        while self._unflushed or self._failed:
            self._unflushed = 0
            left = await loop.run_in_executor(None, self._producer.flush, 30.0)
            failed, self._failed = self._failed, []
            permanent = [f for f in failed if not _retriable(f.error)]
            transient = [f for f in failed if _retriable(f.error)]
            if left:
                self._unflushed += left  # not acknowledged within the flush's 30 s
            if permanent:
                if refused is None:
                    raise DeliveryFailed(f"{len(permanent)} write(s) refused: "
                                         f"{permanent[0].error}")
                refused.extend(permanent)
            if transient:
                log.error("%d write(s) failed (%s); producing them again in %.1fs",
                          len(transient), transient[0].error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_S)
                for write in transient:
                    self.produce(write.topic, write.key, write.value, write.headers,
                                 write.partition, write.timestamp)

    def close(self) -> None:
        self._producer.flush(10.0)


def _options(headers: list[tuple[str, bytes]] | None, partition: int | None,
             timestamp: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if headers:
        options["headers"] = headers
    if partition is not None:
        options["partition"] = partition
    if timestamp:
        options["timestamp"] = timestamp
    return options


def _retriable(error: KafkaError | None) -> bool:
    if error is None:
        return False
    return error.retriable() or error.code() in {KafkaError._MSG_TIMED_OUT,
                                                 KafkaError._TRANSPORT,
                                                 KafkaError.NOT_ENOUGH_REPLICAS}


def dead_letter_sender(producer: BatchProducer) -> Callable[..., Awaitable[None]]:
    """DeadLetters' write through ``producer`` (one of its own: its flush is the letter's)."""

    async def send_acked(key: bytes | None, value: bytes | None,
                         headers: list[tuple[str, bytes]]) -> None:
        refused: list[Failed] = []
        producer.produce(DLQ, key, value, headers)
        await producer.flush(refused)
        if refused:
            raise DeliveryFailed(str(refused[0].error))
    return send_acked
