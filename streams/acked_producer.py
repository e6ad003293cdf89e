"""A producer for request/response services: each caller awaits the broker's acknowledgement
of its own records (BatchProducer's flush waits for everyone's, which suits a batch loop, not
concurrent HTTP requests)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from core.kafka_config import producer_config


class AckedProducer:
    def __init__(self, bootstrap: str, **overrides: Any) -> None:
        self._producer = Producer(producer_config(bootstrap, **{"linger.ms": 2, **overrides}))
        self._running = True
        self._poller = threading.Thread(target=self._poll, name="acked-producer", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._running:
            self._producer.poll(0.1)

    async def send(self, records: list[tuple[str, bytes | None, bytes | None,
                                             list[tuple[str, bytes]] | None]]) -> None:
        """(topic, key, value, headers) records; returns once the broker has all of them,
        raises KafkaException with the first refusal."""
        loop = asyncio.get_running_loop()
        futures = []
        for topic, key, value, headers in records:
            future: asyncio.Future[None] = loop.create_future()

            def acked(err: KafkaError | None, _message: Message,
                      future: asyncio.Future[None] = future) -> None:
                loop.call_soon_threadsafe(_settle, future, err)

            while True:
                try:
                    self._producer.produce(topic, key=key, value=value, headers=headers or None,
                                           on_delivery=acked)
                    break
                except BufferError:
                    await asyncio.sleep(0.01)
            futures.append(future)
        await asyncio.gather(*futures)

    def close(self) -> None:
        self._running = False
        self._poller.join(timeout=5)
        self._producer.flush(10)


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(KafkaException(err))
