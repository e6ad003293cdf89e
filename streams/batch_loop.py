"""The consume-handle-commit loop of the batch stages, on confluent-kafka.

Take a batch (waiting only for its first record, then whatever else is there, or up to
``fill_wait_s`` to fill it), hand it to the stage, which returns once every write it caused
is acknowledged, and only then commit the batch's offsets: at least once. Consume and commit
run on one thread of their own (librdkafka releases the GIL), so the event loop keeps
serving the stage's sends meanwhile. Rebalance callbacks run inside that consume, between
two batches, never during one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from core.kafka_config import consumer_config
from streams import metrics
from streams.batch_io import SourceRecord
from streams.groups import adopt_offsets, group_is_new

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.5   # an idle consume returns this often (to see a stop)
LAG_EVERY_S = 5.0   # how often the lag of the held partitions is reported

Handler = Callable[[list[SourceRecord]], Awaitable[None]]
# a tick returns True when it has more work at once (the next consume then waits for nothing)
Tick = Callable[[], Awaitable[bool | None]]
Rebalance = Callable[[list[int]], None]


class BatchLoop:
    def __init__(self, bootstrap: str, group: str, topics: list[str], handle: Handler, *,
                 take_max: int, fill_wait_s: float = 0.0, adopt_from: list[str] | None = None,
                 on_assign: Rebalance | None = None, on_revoke: Rebalance | None = None,
                 assignment: str = "cooperative-sticky", label: str | None = None,
                 startup_timeout_s: float = 120.0, tick: Tick | None = None) -> None:
        """``tick``: work of the stage's own, run after every batch and every idle wait
        (at least every IDLE_WAIT_S), between two consumes like the handler; when it says it
        has more work, the next consume takes only what is already there."""
        self.tick = tick
        self.bootstrap, self.group, self.topics, self.handle = bootstrap, group, topics, handle
        self.take_max, self.fill_wait_s = take_max, fill_wait_s
        self.adopt_from = adopt_from or []
        self.on_assign, self.on_revoke = on_assign, on_revoke
        # "range" gives each member the same partition numbers of every topic (topics of
        # equal partition counts): what a stage joining two topics on local state needs
        self.assignment = assignment
        self.startup_timeout_s = startup_timeout_s
        self.ready = False  # joined, and the first assignment's callback done
        self.group_label = label or (group.rpartition("-sender-")[2] if "-sender-" in group
                                     else "sink")
        self._stopping = False
        self._consumer: Consumer | None = None
        # the last offsets committed asynchronously, per (topic, partition)
        self._in_flight: dict[tuple[str, int], TopicPartition] = {}
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"kafka-{group}")
        self._lag_due = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._consumer = await loop.run_in_executor(self._thread, self._join)
        offsets: list[TopicPartition] = []
        busy = False  # the tick has more work now: take only what is already there
        try:
            while not self._stopping:
                messages = await loop.run_in_executor(self._thread, self._commit_and_take,
                                                      offsets, 0.0 if busy else IDLE_WAIT_S)
                records = []
                for message in messages:
                    if message.error():
                        log.warning("%s: consumer error %s", self.group, message.error())
                    else:
                        records.append(SourceRecord.of(message))
                if records:
                    metrics.BATCH_SIZE.labels(self.group_label).observe(len(records))
                    await self.handle(records)
                busy = bool(await self.tick()) if self.tick is not None else False
                offsets = next_offsets(records)
            await loop.run_in_executor(self._thread, self._commit, offsets)
        finally:
            await loop.run_in_executor(self._thread, self._close)

    def stop(self) -> None:
        self._stopping = True

    def _join(self) -> Consumer:
        # a new group continues where the groups it replaces stopped (no skip, no resend)
        if self.adopt_from and group_is_new(self.bootstrap, self.group, self.topics,
                                            self.startup_timeout_s):
            taken = adopt_offsets(self.bootstrap, self.adopt_from, self.group, self.topics,
                                  self.startup_timeout_s)
            if taken:
                log.info("new group %s continues from %s on %d partition(s)", self.group,
                         self.adopt_from, taken)
        consumer = Consumer(consumer_config(self.bootstrap, self.group, **{
            "partition.assignment.strategy": self.assignment,
            # the broker answers a fetch as soon as a record arrives: a long wait costs no
            # latency, and an idle worker does not poll the broker 100 times a second
            "fetch.wait.max.ms": 500, "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000}))
        consumer.subscribe(self.topics, on_assign=self._assigned, on_revoke=self._revoked,
                           on_lost=self._revoked)
        return consumer

    def _assigned(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.on_assign is not None:
            self.on_assign([tp.partition for tp in partitions])
        self.ready = True

    def _revoked(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # the next owner starts where this one's last commit ends: make sure it arrived
        handed = {(tp.topic, tp.partition) for tp in partitions}
        last = [tp for key, tp in self._in_flight.items() if key in handed]
        for key in handed:
            self._in_flight.pop(key, None)
        self._commit(last)
        for topic, partition in handed:  # no longer this process's to report
            try:
                metrics.CONSUMER_LAG.remove(self.group, topic, str(partition))
            except KeyError:
                pass
        if self.on_revoke is not None:
            self.on_revoke([tp.partition for tp in partitions])

    def _commit_and_take(self, offsets: list[TopicPartition],
                         wait_s: float = IDLE_WAIT_S) -> list[Any]:
        """Commit without waiting for the broker's answer (a synchronous commit held the next
        batch back 5-30 ms, measured in the critical lane during a campaign), then wait for
        the first record only (up to ``wait_s``): what else is there comes with it (no added
        latency when idle, big batches under load)."""
        self._commit(offsets, asynchronous=True)
        assert self._consumer is not None
        if time.monotonic() >= self._lag_due:
            self._report_lag()
        first = self._consumer.consume(1, timeout=wait_s)
        if not first or self.take_max == 1:
            return first
        return first + self._consumer.consume(self.take_max - 1, timeout=self.fill_wait_s)

    def _report_lag(self) -> None:
        """Lag of the partitions held, from what the consumer already knows (its position,
        and the end offsets of its last fetch answers): no request to the broker."""
        self._lag_due = time.monotonic() + LAG_EVERY_S
        assert self._consumer is not None
        try:
            held = self._consumer.position(self._consumer.assignment())
        except KafkaException:
            return
        for tp in held:
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                metrics.CONSUMER_LAG.labels(self.group, tp.topic, str(tp.partition)).set(
                    max(0, high - tp.offset))

    def _commit(self, offsets: list[TopicPartition], asynchronous: bool = False) -> None:
        """At least once either way: a commit that fails (or is lost with the process) makes
        the batch be read again, and the ledgers skip what was sent."""
        if not offsets or self._consumer is None:
            return
        if asynchronous:
            self._in_flight.update({(tp.topic, tp.partition): tp for tp in offsets})
        try:
            self._consumer.commit(offsets=offsets, asynchronous=asynchronous)
        except KafkaException as err:  # read again after a rebalance; ledgers skip them
            log.warning("%s: commit failed (%s)", self.group, err)

    def _close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


class LoopStage:
    """A stage run by batch loops: ready when every loop is, stopped with them; ``prepare``
    runs before the loops start, ``close`` after they end (the stage's producers, clients)."""

    loops: list[BatchLoop]

    @property
    def ready(self) -> bool:
        return all(loop.ready for loop in self.loops)

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()

    async def run(self) -> None:
        try:
            await self.prepare()
            await asyncio.gather(*(loop.run() for loop in self.loops))
        finally:
            await self.close()

    async def prepare(self) -> None:
        return None

    async def close(self) -> None:
        return None


def next_offsets(records: list[SourceRecord]) -> list[TopicPartition]:
    """The offsets to commit once ``records`` are handled: one past each partition's last."""
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = record.offset
    return [TopicPartition(topic, partition, offset + 1)
            for (topic, partition), offset in last.items()]
