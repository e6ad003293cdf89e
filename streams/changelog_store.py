"""State of the batch engine: local maps whose truth is a Kafka topic.

``ChangelogStore`` (the idempotency ledgers, the profiles) keeps the assigned partitions of a
compacted changelog topic on local disk, co-partitioned with what it serves: restored from
the changelog when a partition is assigned, written through to the changelog with every
change. The format is Faust's (JSON key and value), so state written by a Faust table reads
here. Nothing lives only on local disk: a deleted local store, a moved partition and a
kill -9 all restore from the topic.

``SuppressionView`` merges the suppression change topic (kept forever, small) into a map of
every recipient key; it catches up before each batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from core import json_text
from core.kafka_config import consumer_config
from streams import memory
from streams.batch_io import BatchProducer
from streams.local_store import DiskMaps

log = logging.getLogger(__name__)

ROLL_KEY = json.dumps("\u0000roll").encode()  # no entry has it: its tombstone changes nothing


def _reader(bootstrap: str, name: str, **overrides: Any) -> Consumer:
    """A consumer that is assigned partitions by hand and never commits."""
    return Consumer(consumer_config(bootstrap, f"flowmail-reader-{name}", **overrides))


def read_to_end(bootstrap: str, topic: str, partitions: Iterable[int],
                apply: Callable[[int, bytes | None, bytes | None], None],
                timeout_s: float = 120.0, starts: dict[int, int] | None = None
                ) -> dict[int, int]:
    """Feed every record of ``partitions`` (from ``starts``, else the beginning, to today's
    end) to ``apply``; returns the offset each partition was read up to."""
    starts = starts or {}
    reader = _reader(bootstrap, topic)
    try:
        ends, read_up_to = {}, {}
        for partition in partitions:
            low, high = reader.get_watermark_offsets(TopicPartition(topic, partition),
                                                     timeout=10)
            read_up_to[partition] = high
            if high > max(low, starts.get(partition, low)):
                ends[partition] = high
        if not ends:
            return read_up_to
        reader.assign([TopicPartition(topic, p, starts.get(p, OFFSET_BEGINNING))
                       for p in ends])
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"restoring {topic}: {len(ends)} partition(s) not read "
                                   f"within {timeout_s:.0f}s")
            for message in reader.consume(5000, timeout=0.5):
                if message.error():
                    continue
                partition = message.partition()
                apply(partition, message.key(), message.value())
                if partition in ends and message.offset() + 1 >= ends[partition]:
                    del ends[partition]
        return read_up_to
    finally:
        reader.close()


class ChangelogStore:
    """Partitions of a compacted changelog, held on local disk (streams/local_store.py).

    A revoked partition's rows stay, with the changelog offset they were read up to: when it
    comes back (an eager rebalance gives every partition back at once), only what was
    written since is read. A copy older than ``CATCH_UP_MAX_AGE_S`` is read again from the
    start: compaction may have dropped tombstones since."""

    CATCH_UP_MAX_AGE_S = 3600.0
    APPLY_CHUNK = 5000

    def __init__(self, bootstrap: str, topic: str, producer: BatchProducer,
                 state_dir: Path) -> None:
        self.bootstrap, self.topic, self.producer = bootstrap, topic, producer
        self._rows = DiskMaps(state_dir, topic)
        self._held: set[int] = set()
        self._read_up_to: dict[int, tuple[int, float]] = {}  # offset, when (monotonic)
        self._written: dict[int, float] = {}  # partition -> last write (monotonic)

    @property
    def partitions(self) -> set[int]:
        return set(self._held)

    def restore(self, partitions: Iterable[int], timeout_s: float = 120.0) -> int:
        """Read the changelog of partitions not yet held; returns the entries they hold."""
        wanted = sorted(set(partitions) - self._held)
        starts: dict[int, int] = {}
        now = time.monotonic()
        for partition in wanted:
            kept = self._read_up_to.get(partition)
            if kept is not None and now - kept[1] < self.CATCH_UP_MAX_AGE_S:
                starts[partition] = kept[0]
            else:
                self._rows.clear(partition)
        changes: list[tuple[int, str, str | None]] = []

        def apply(partition: int, key: bytes | None, value: bytes | None) -> None:
            if key is None:
                return
            changes.append((partition, json.loads(key),
                            None if value is None else value.decode()))
            if len(changes) >= self.APPLY_CHUNK:
                self._rows.apply(changes)
                changes.clear()

        read_up_to = read_to_end(self.bootstrap, self.topic, wanted, apply, timeout_s, starts)
        self._rows.apply(changes)
        memory.trim()  # the history read is freed; give it back
        for partition in wanted:
            self._read_up_to[partition] = (read_up_to.get(partition, 0), now)
        self._held.update(wanted)
        return self._rows.count(wanted)

    def drop(self, partitions: Iterable[int]) -> None:
        """No longer ours: kept on disk, caught up if it comes back."""
        self._held.difference_update(partitions)

    def get(self, partition: int, key: str) -> Any:
        raw = self._rows.get(partition, key)
        return None if raw is None else json_text.loads(raw)

    def put(self, partition: int, key: str, value: Any) -> None:
        """Locally now; on the broker once the producer's next flush returns."""
        raw = json_text.dumps(value)  # the key stays json.dumps: compaction compares bytes
        self._rows.put(partition, key, raw)
        self.producer.produce(self.topic, json.dumps(key).encode(), raw.encode(),
                              partition=partition)
        self._written[partition] = time.monotonic()

    def delete(self, partition: int, key: str) -> bool:
        """Locally now (overwritten on disk), on the broker as a tombstone; True if held."""
        held = self._rows.get(partition, key) is not None
        self._rows.delete(partition, key)
        self.producer.produce(self.topic, json.dumps(key).encode(), None, partition=partition)
        self._written[partition] = time.monotonic()
        return held

    def keep_rolling(self, every_s: float) -> None:
        """A compacted topic compacts only closed segments, and Kafka closes a segment on a
        write: a held partition without writes for ``every_s`` gets a tombstone of a key no
        entry has, so what an erasure replaced is compacted within the bound even when
        nothing else is written there."""
        now = time.monotonic()
        for partition in self._held:
            if now - self._written.get(partition, 0.0) >= every_s:
                self.producer.produce(self.topic, ROLL_KEY, None, partition=partition)
                self._written[partition] = now

    def values(self, partition: int) -> Iterator[Any]:
        for raw in self._rows.values(partition):
            yield json_text.loads(raw)

    def items(self, partition: int, after: str | None = None) -> Iterator[tuple[str, Any]]:
        """(key, value) in key order after ``after``: a cursor that survives restarts."""
        for key, raw in self._rows.items(partition, after):
            yield key, json_text.loads(raw)

    def close(self) -> None:
        self._rows.close()


class SuppressionView:
    """Every key's merged entry from a change topic: the suppressions by recipient key, the
    raised alerts by alert id (streams/quarantine.py)."""

    def __init__(self, bootstrap: str, topic: str,
                 merge: Callable[[Any, Any], Any], parse: Callable[[bytes | None], Any],
                 label: str = "suppressions") -> None:
        self.bootstrap, self.topic, self.label = bootstrap, topic, label
        self._merge, self._parse = merge, parse
        self.entries: dict[str, Any] = {}
        self._follower: Consumer | None = None

    def _apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        name = key.decode("utf-8", "replace")
        try:
            change = self._parse(value)
        except Exception:  # noqa: BLE001 - the Faust suppressions agent dead-letters it
            log.warning("%s: unreadable change on %s skipped", self.label, self.topic)
            return
        merged = self._merge(self.entries.get(name), change)
        if merged is None:
            self.entries.pop(name, None)
        else:
            self.entries[name] = merged

    def start(self, timeout_s: float = 120.0) -> None:
        """Read everything there is, then follow the topic."""
        # the broker answers as soon as a change arrives; idle, it is asked 5 times a second
        follower = _reader(self.bootstrap, f"{self.topic}-follow", **{"fetch.wait.max.ms": 200})
        partitions = follower.list_topics(self.topic, timeout=10).topics[self.topic].partitions
        read_up_to = read_to_end(self.bootstrap, self.topic, partitions,
                                 lambda _p, k, v: self._apply(k, v), timeout_s)
        # the follower starts exactly where the first read ended: nothing missed, nothing twice
        follower.assign([TopicPartition(self.topic, p, offset)
                         for p, offset in read_up_to.items()])
        self._follower = follower
        log.info("%s: %d key(s) held", self.label, len(self.entries))

    def catch_up(self) -> None:
        """Merge whatever the follower has fetched (it fetches in the background)."""
        if self._follower is None:
            return
        while True:
            messages = self._follower.consume(1000, timeout=0)
            for message in messages:
                if not message.error():
                    self._apply(message.key(), message.value())
            if len(messages) < 1000:
                return

    def get(self, key: str) -> Any:
        return self.entries.get(key)

    def close(self) -> None:
        if self._follower is not None:
            self._follower.close()
