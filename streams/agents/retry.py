"""Retry topics: commands wait until their not-before time without blocking anything.

The retry agent reads without acknowledging, parks each command in a heap by due time and a
timer re-publishes the due ones to the priority topic, acknowledging only after the broker
has them. Faust commits the contiguous acknowledged prefix, so a crash re-reads what was not
yet re-published (at least once; the ledger makes the duplicate harmless).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.avro import SchemaRegistry
from core.settings import Settings
from core.vocab import Priority
from processors.commands import EmailCommand
from streams.dlq import DeadLetters
from streams.serde import serde
from streams.topics import faust_topic, spec_by_name

if TYPE_CHECKING:
    import faust

log = logging.getLogger(__name__)


class DueQueue:
    """Items ordered by due time (epoch ms); ``pop_due`` returns those whose time has come."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._heap: list[tuple[int, int, Any]] = []
        self._order = itertools.count()
        self._clock = clock

    def add(self, due_ms: int, item: Any) -> None:
        heapq.heappush(self._heap, (due_ms, next(self._order), item))

    def pop_due(self) -> list[Any]:
        now_ms = int(self._clock() * 1000)
        due = []
        while self._heap and self._heap[0][0] <= now_ms:
            due.append(heapq.heappop(self._heap)[2])
        return due

    def __len__(self) -> int:
        return len(self._heap)


def register(app: faust.App, settings: Settings, registry: SchemaRegistry, dead: DeadLetters,
             priority: Priority) -> None:
    specs = spec_by_name(settings)
    target = faust_topic(app, specs[priority.topic])
    waiting = DueQueue()
    commands = serde(settings, registry, priority.retry_topic)

    @app.agent(faust_topic(app, specs[priority.retry_topic]), name=f"retry_{priority.value}")
    async def retry(stream: faust.StreamT) -> None:
        async for event in stream.noack().events():
            command = await dead.attempt(event.message, f"retry.{priority.value}", lambda e=event: (
                EmailCommand.from_record(commands.decode(e.message.value))))
            if command is None:
                event.ack()
                continue
            waiting.add(command.not_before or 0, event)

    @app.timer(0.2, name=f"release_{priority.value}")
    async def release() -> None:
        for event in waiting.pop_due():
            delivered = await target.send(key=event.message.key, value=event.message.value)
            await delivered  # on the broker before the retry record is acknowledged
            event.ack()
