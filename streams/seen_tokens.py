"""Webhook tokens already accepted, shared by every replica through a Kafka topic.

Mailgun signs ``timestamp + token``; a captured request replayed within the timestamp
tolerance would verify again, so each accepted token is written to ``webhooks.seen_tokens``
(with the request's events, acknowledged before the 200) and every replica reads that topic
from ``now - tolerance`` at start and follows it. A replay reaching any replica after the
token's record is refused; two copies reaching two replicas within the same few milliseconds
can both pass, and then their delivery events carry the same ids, so nothing counts twice.
"""

from __future__ import annotations

import hashlib
import threading
import time

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from core.kafka_config import client_config


def token_key(provider: str, token: str) -> bytes:
    return hashlib.sha256(f"{provider}\x1f{token}".encode()).hexdigest().encode()


class SeenTokens:
    def __init__(self, bootstrap: str, topic: str, window_s: float) -> None:
        self.topic, self.window_s = topic, window_s
        self._seen: dict[bytes, float] = {}
        self._lock = threading.Lock()
        self._caught_up = threading.Event()
        self._running = True
        self._consumer = Consumer(client_config(bootstrap, **{
            "group.id": "flowmail-webhooks-seen-tokens", "enable.auto.commit": False,
            "auto.offset.reset": "earliest"}))
        self._thread = threading.Thread(target=self._follow, name="seen-tokens", daemon=True)

    def start(self, timeout_s: float = 60.0) -> None:
        """Read what the window holds before the first request is answered."""
        self._thread.start()
        if not self._caught_up.wait(timeout_s):
            raise TimeoutError(f"{self.topic} not read within {timeout_s:.0f}s")

    def _follow(self) -> None:
        metadata = self._consumer.list_topics(self.topic, timeout=30)
        partitions = sorted(metadata.topics[self.topic].partitions)
        since = int((time.time() - self.window_s) * 1000)
        starts = self._consumer.offsets_for_times(
            [TopicPartition(self.topic, p, since) for p in partitions], timeout=30)
        ends = {p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                        timeout=30)[1] for p in partitions}
        self._consumer.assign([TopicPartition(self.topic, tp.partition,
                                              tp.offset if tp.offset >= 0 else OFFSET_END)
                               for tp in starts])
        positions = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition]
                     for tp in starts}
        while self._running:
            if not self._caught_up.is_set() and all(positions[p] >= ends[p] for p in partitions):
                self._caught_up.set()
            message = self._consumer.poll(0.2)
            if message is None or message.error():
                continue
            positions[message.partition()] = message.offset() + 1
            if message.key():
                with self._lock:
                    self._seen[message.key()] = time.time()
        self._consumer.close()

    def seen(self, key: bytes) -> bool:
        with self._lock:
            self._forget_old()
            return key in self._seen

    def count(self) -> int:
        with self._lock:
            return len(self._seen)

    def remember(self, key: bytes) -> None:
        with self._lock:
            self._seen[key] = time.time()

    def _forget_old(self) -> None:
        if len(self._seen) < 100_000:
            return
        horizon = time.time() - self.window_s * 2
        for key in [k for k, at in self._seen.items() if at < horizon]:
            del self._seen[key]

    def close(self) -> None:
        self._running = False
        if self._thread.is_alive():
            self._thread.join(timeout=5)
