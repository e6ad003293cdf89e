"""confluent-kafka under the per-email stages: records taken in batches, writes awaited as one
batch. Faust's per-event Stream costs 0.3-0.5 ms of CPU per record; this costs ~0.01 ms
(docs/performance.md, "The batch engine")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from core.kafka_config import producer_config
from streams.topics import DLQ

log = logging.getLogger(__name__)

RETRY_CAP_S = 30.0


@dataclass(frozen=True)
class SourceRecord:
    """Where a record came from and what it held (what a dead letter keeps)."""

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
class _Pending:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    partition: int | None
    timestamp: int | None = None
    error: KafkaError | None = None
    done: bool = False


LINGER_MS = 100


class BatchProducer:
    """``produce`` buffers; ``flush`` returns once the broker acknowledged every write since
    the last flush, re-producing any a transient broker failure dropped (never losing one).

    Linger: every stage flushes at the end of its batch, and librdkafka's flush sends what
    waits at once, whatever ``linger.ms`` says. So a long linger costs no latency; it makes
    a batch's writes one produce request instead of one every few milliseconds while the
    batch is sent (with 5 ms, the broker's CPU per email was a fifth of the whole)."""

    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._producer = Producer(producer_config(
            bootstrap, **{"linger.ms": LINGER_MS, "batch.num.messages": 10000,
                          "compression.type": "lz4", **overrides}))
        self._pending: list[_Pending] = []

    @property
    def waiting(self) -> int:
        """Writes produced since the last flush and not yet acknowledged by it."""
        return len(self._pending)

    def produce(self, topic: str, key: bytes | None, value: bytes | None,
                headers: list[tuple[str, bytes]] | None = None,
                partition: int | None = None, timestamp: int | None = None) -> _Pending:
        """``timestamp``: ms since the epoch (default: now)."""
        pending = _Pending(topic, key, value, headers, partition, timestamp)
        self._pending.append(pending)
        self._send(pending)
        return pending

    def _send(self, pending: _Pending) -> None:
        def acked(err: KafkaError | None, _message: Message) -> None:
            pending.error, pending.done = err, True

        options: dict[str, Any] = {"on_delivery": acked}
        if pending.headers:
            options["headers"] = pending.headers
        if pending.partition is not None:
            options["partition"] = pending.partition
        if pending.timestamp:
            options["timestamp"] = pending.timestamp
        while True:
            try:
                self._producer.produce(pending.topic, key=pending.key, value=pending.value,
                                       **options)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)

    async def flush(self, refused: list[_Pending] | None = None) -> None:
        """Wait for every acknowledgement. A write refused for good (the broker will never
        take it) is handed back in ``refused`` when given, else raised; a transient failure
        is produced again with backoff, for as long as it takes."""
        loop = asyncio.get_running_loop()
        delay = 0.5
        while self._pending:
            await loop.run_in_executor(None, self._producer.flush, 30.0)
            failed = [p for p in self._pending if p.done and p.error is not None]
            waiting = [p for p in self._pending if not p.done]
            permanent = [p for p in failed if not _retriable(p.error)]
            transient = [p for p in failed if _retriable(p.error)]
            self._pending = waiting
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
                for pending in transient:
                    pending.error, pending.done = None, False
                    self._pending.append(pending)
                    self._send(pending)

    def close(self) -> None:
        self._producer.flush(10.0)


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
        refused: list[_Pending] = []
        producer.produce(DLQ, key, value, headers)
        await producer.flush(refused)
        if refused:
            raise DeliveryFailed(str(refused[0].error))
    return send_acked
