"""Marketing through a provider's batch API: commands grouped by (campaign, variant, locale),
rendered once per group, sent a thousand recipients a call.

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

import time
import uuid
from collections.abc import Awaitable, Callable
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, Protocol

from core.vocab import DeliveryStatus
from processors.bulk import group, render_bulk
from processors.commands import EmailCommand
from providers.base import ProviderError
from providers.chain import NoBulkProvider, bulk_capable, send_bulk
from streams import metrics

if TYPE_CHECKING:
    from core.vocab import Priority
    from processors.rendering import Renderer
    from processors.tracking import Tracker
    from providers.chain import ProviderChain
    from streams.batch_io import BatchProducer, SourceRecord
    from streams.changelog_store import ChangelogStore

CALL_MAX = 1000  # recipients per batch API call

Job = tuple["SourceRecord", EmailCommand]


class Sender(Protocol):
    """What a batch call shares with the sender that admitted its commands
    (streams/batch_sender.py): its ledger, its producer, and how it records outcomes."""

    priority: Priority
    renderer: Renderer
    tracker: Tracker | None
    chain: ProviderChain
    ledger: ChangelogStore
    producer: BatchProducer

    async def retry_or_fail(self, record: SourceRecord, command: EmailCommand, err: Exception,
                            *, transient: bool, provider: str | None = None,
                            retry_after_s: float | None = None, alert: bool = False) -> None: ...

    def report(self, command: EmailCommand, status: DeliveryStatus, **fields: Any) -> None: ...


class BulkCalls:
    def __init__(self, sender: Sender, mail_from: str,
                 one_by_one: Callable[[list[Job]], Awaitable[None]]) -> None:
        self.sender = sender
        name, address = parseaddr(mail_from)
        self.mail_from = (address, name)
        self.one_by_one = one_by_one

    async def send(self, jobs: list[Job]) -> None:
        by_id = {command.command_id: (record, command) for record, command in jobs}
        # a call any batch provider of the chain takes: each declares its bulk_max
        size = min([CALL_MAX, *(m.provider.bulk_max for m in bulk_capable(self.sender.chain))])
        for commands in group([command for _, command in jobs]):
            for start in range(0, len(commands), size):
                await self._call([by_id[c.command_id] for c in commands[start:start + size]])

    async def _call(self, chunk: list[Job]) -> None:
        sender = self.sender
        commands = [command for _, command in chunk]

        async def render(placeholder: str, _max: int) -> Any:
            return render_bulk(sender.renderer, commands, placeholder, sender.tracker)

        batch = uuid.uuid4().hex[:12]
        await self._record(chunk, f"inflight:{batch}")
        try:
            provider, results = await send_bulk(sender.chain, render, len(chunk),
                                                self.mail_from)
        except NoBulkProvider:
            await self._record(chunk, "failed:no-batch-api")
            await self.one_by_one(chunk)
            return
        except ProviderError as err:
            await self._record(chunk, f"failed:{err.provider}")
            for record, command in chunk:
                await sender.retry_or_fail(record, command, err, transient=err.transient,
                                           provider=err.provider,
                                           retry_after_s=err.retry_after_s)
            return
        await self._record(chunk, f"sent:{provider}")
        now_ms = time.time() * 1000
        for command, result in zip(commands, results, strict=True):
            latency_ms = now_ms - command.event_published_at
            metrics.SEND_LATENCY.labels(sender.priority.value).observe(latency_ms / 1000)
            sender.report(command, DeliveryStatus.SENT, provider=provider,
                          provider_message_id=result.provider_message_id,
                          latency_ms=latency_ms)

    async def _record(self, chunk: list[Job], value: str) -> None:
        """One ledger value for a whole call, each on its command's partition, awaited
        together: one round trip, not a thousand."""
        for record, command in chunk:
            self.sender.ledger.put(record.partition, command.idempotency_key, value)
        await self.sender.ledger_producer.flush()
