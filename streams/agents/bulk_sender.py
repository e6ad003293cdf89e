"""Marketing in bulk: commands are taken in batches, grouped by (campaign, variant, locale),
rendered once per group and sent through a provider batch API, 1,000 recipients a call.

Everything per recipient (ledger, suppression, delivery events, retries) stays as in the
one-by-one sender, which is also the fallback when no provider of the chain has a batch API.

Crash policy (marketing): before a batch call every recipient's ledger entry becomes
``inflight:<batch>`` and after it ``sent:<provider>``, each written as one batch and awaited.
A worker killed during the call leaves the batch's outcome unknown: the provider may have
accepted it. A recipient found ``inflight`` is reported ``ambiguous`` and not sent again: for
marketing a missed email costs less than a duplicate to a thousand people. (Transactional and
critical mail go one by one without the marker: an unknown outcome is sent again, because a
missing order confirmation costs more than a rare duplicate.) A provider error is a known
outcome: the entries become ``failed:<provider>`` before the retries are scheduled.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any

from faust.streams import _current_event as _current_event_contextvar

from flowmail.settings import Settings
from flowmail.vocab import DeliveryStatus
from processors.bulk import group, render_bulk
from processors.commands import EmailCommand
from providers.base import ProviderError
from providers.chain import NoBulkProvider, bulk_capable, send_bulk
from streams import metrics
from streams.agents.router import YIELD_EVERY
from streams.agents.sender import SenderStage
from streams.topics import COMMAND_SUBJECT

if TYPE_CHECKING:
    import faust
    from faust.types import EventT

BATCH_MAX = 1000


@contextmanager
def as_current(event: EventT) -> Iterator[None]:
    """Faust writes a table change to the partition of the *current* event, which it sets
    only while iterating a stream one event at a time; a batch sets it per command here."""
    token = _current_event_contextvar.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event_contextvar.reset(token)


class BulkSenderStage:
    def __init__(self, single: SenderStage, settings: Settings) -> None:
        self.single = single
        name, address = parseaddr(settings.mail_from)
        self.sender = (address, name)
        self.concurrency = settings.sender_concurrency

    async def handle_batch(self, events: list[EventT]) -> None:
        pending: list[tuple[EventT, EmailCommand]] = []
        in_batch: set[str] = set()
        for index, event in enumerate(events):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a batch must not hold the loop (see router.py)
            command = await self._admit(event, in_batch)
            if command is not None:
                pending.append((event, command))
                in_batch.add(command.idempotency_key)
        by_command = {c.command_id: e for e, c in pending}
        for commands in group([c for _, c in pending]):
            for start in range(0, len(commands), BATCH_MAX):
                chunk = commands[start:start + BATCH_MAX]
                await self._send_chunk(chunk, by_command)

    async def _admit(self, event: EventT, in_batch: set[str]) -> EmailCommand | None:
        """Decode, skip duplicates and suppressed recipients (reported), else pending."""
        stage = self.single
        try:
            command = EmailCommand.from_record(
                stage.registry.decode(COMMAND_SUBJECT, event.message.value))
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await stage.dead.reject(event.message, err, stage=f"sender.{stage.priority.value}")
            return None
        if command.idempotency_key in in_batch:
            # two copies of one command in one batch: the ledger is written only after the
            # batch is sent, so it cannot see the second copy (a replayed campaign)
            await stage.report(command, DeliveryStatus.SKIPPED_DUPLICATE,
                               reason="ledger: same key earlier in this batch")
            return None
        previous = stage.ledger.get(command.idempotency_key)
        if previous is not None and previous.startswith("sent"):
            await stage.report(command, DeliveryStatus.SKIPPED_DUPLICATE,
                               reason=f"ledger: {previous}")
            return None
        if previous is not None and previous.startswith("inflight"):
            metrics.AMBIGUOUS.labels(stage.priority.value).inc()
            await stage.report(command, DeliveryStatus.AMBIGUOUS,
                               reason=f"ledger: {previous}: the batch call's outcome is "
                                      "unknown; not sent again")
            return None
        suppressed = stage._suppression(command)
        if suppressed:
            await stage.report(command, DeliveryStatus.SUPPRESSED, reason=suppressed)
            return None
        return command

    async def _send_chunk(self, chunk: list[EmailCommand], by_command: dict[str, Any]) -> None:
        stage = self.single
        loop = asyncio.get_running_loop()

        async def render(placeholder: str, _max: int) -> Any:
            return await loop.run_in_executor(stage.render_pool, render_bulk, stage.renderer,
                                              chunk, placeholder)

        if not bulk_capable(stage.chain):
            await self._one_by_one([by_command[c.command_id] for c in chunk])
            return
        batch = uuid.uuid4().hex[:12]
        await self._record(chunk, by_command, f"inflight:{batch}")
        try:
            provider, results = await send_bulk(stage.chain, render, len(chunk), self.sender)
        except NoBulkProvider:
            await self._record(chunk, by_command, "failed:no-batch-api")
            await self._one_by_one([by_command[c.command_id] for c in chunk])
            return
        except ProviderError as err:
            await self._record(chunk, by_command, f"failed:{err.provider}")
            for command in chunk:
                event = by_command[command.command_id]
                with as_current(event):
                    await stage._provider_failed(event.message, command, err)
            return
        await self._record(chunk, by_command, f"sent:{provider}")
        now_ms = time.time() * 1000
        for index, (command, result) in enumerate(zip(chunk, results, strict=True)):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            latency_ms = now_ms - command.event_published_at
            metrics.SEND_LATENCY.labels(stage.priority.value).observe(latency_ms / 1000)
            await stage.report(command, DeliveryStatus.SENT, provider=provider,
                               provider_message_id=result.provider_message_id,
                               latency_ms=latency_ms)


    async def _record(self, chunk: list[EmailCommand], by_command: dict[str, Any],
                      value: str) -> None:
        """One ledger value for every command of a chunk, produced together and awaited
        together (each on its command's partition): one round trip, not a thousand."""
        ledger = self.single.ledger
        pending = []
        for index, command in enumerate(chunk):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            key = command.idempotency_key
            with as_current(by_command[command.command_id]):
                ledger.data[key] = value
                pending.append(ledger.send_changelog(ledger.partition_for_key(key), key, value))
        await asyncio.gather(*pending)

    async def _one_by_one(self, events: list[EventT]) -> None:
        """No batch API in the chain (SMTP): each command through the single sender, as many
        at once as the one-by-one agent would run."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(event: EventT) -> None:
            async with gate:
                with as_current(event):
                    await self.single.handle(event.message)

        await asyncio.gather(*(one(event) for event in events))


def register(app: faust.App, settings: Settings, single: SenderStage, topic: Any) -> None:
    stage = BulkSenderStage(single, settings)

    @app.agent(topic, name=f"sender_{single.priority.value}")
    async def bulk_sender(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.bulk_batch_size,
                                              within=settings.bulk_batch_seconds):
            await stage.handle_batch(batch)
