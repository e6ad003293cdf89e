"""Email commands of one priority -> provider chain, with suppression, the idempotency
ledger, retries through the retry topic, and a delivery event for every outcome."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import Executor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from flowmail.avro import SchemaRegistry
from flowmail.settings import Settings, name_values
from flowmail.vocab import DeliveryStatus, Priority, RejectReason
from processors.commands import DeliveryEvent, EmailCommand
from processors.errors import AttachmentFailed, RejectedInput
from processors.keys import delivery_event_id, recipient_domain, recipient_key
from processors.message import OutgoingEmail, build_message
from processors.rendering import RenderedEmail, Renderer
from processors.suppression import suppressing
from providers.backoff import retry_delay_s
from providers.base import ProviderError
from providers.chain import ProviderChain, bulk_capable
from providers.scoring import REGION_OF_LOCALE
from streams import metrics
from streams.dlq import DeadLetters
from streams.keyed_locks import KeyedLocks
from streams.topics import (
    ALERTS,
    COMMAND_SUBJECT,
    DELIVERY,
    faust_topic,
    ledger_table,
    spec_by_name,
)

if TYPE_CHECKING:
    import faust
    from faust.types import Message

log = logging.getLogger(__name__)

# Ledger value "sent:<provider>", written once the provider accepted (and awaited).


class SenderStage:
    """One command at a time: ledger and suppression checks, render, send, record, report."""

    def __init__(self, priority: Priority, registry: SchemaRegistry, chain: ProviderChain,
                 renderer: Renderer, ledger: Any, suppressions: Any, topics: dict[str, Any],
                 dead: DeadLetters, settings: Settings, render_pool: Executor) -> None:
        self.priority, self.registry, self.chain = priority, registry, chain
        self.renderer, self.ledger, self.suppressions = renderer, ledger, suppressions
        self.topics, self.dead, self.render_pool = topics, dead, render_pool
        self.mail_from = settings.mail_from
        self.key_secret = settings.pseudonym_secret.encode()
        self.max_attempts = int(name_values(settings.retry_max_attempts, "retry_max_attempts",
                                            int).get(priority.value, 3))
        self.retry_base_s, self.retry_cap_s = settings.retry_base_s, settings.retry_cap_s
        self._locks = KeyedLocks()

    async def handle(self, message: Message) -> None:
        try:
            command = EmailCommand.from_record(self.registry.decode(COMMAND_SUBJECT, message.value))
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await self.dead.reject(message, err, stage=f"sender.{self.priority.value}")
            return
        # Concurrent actors: two copies of one command must not both pass the ledger check.
        async with self._locks.hold(command.idempotency_key):
            await self._send_once(message, command)

    async def _send_once(self, message: Message, command: EmailCommand) -> None:
        previous = self.ledger.get(command.idempotency_key)
        if previous is not None and previous.startswith("sent"):
            await self.report(command, DeliveryStatus.SKIPPED_DUPLICATE,
                              reason=f"ledger: {previous}")
            return
        suppressed = self._suppression(command)
        if suppressed:
            await self.report(command, DeliveryStatus.SUPPRESSED, reason=suppressed)
            return
        try:
            rendered = self.renderer.render(command)
            email = self._compose(command, rendered)
        except AttachmentFailed as err:
            await self._retry_or_fail(message, command, err, transient=True, alert=True)
            return
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await self._failed(message, command, err)
            return
        try:
            result = await self.chain.send(email, REGION_OF_LOCALE.get(command.locale, ""))
        except ProviderError as err:
            await self._provider_failed(message, command, err)
            return
        await self._record_sent(command.idempotency_key, f"sent:{result.provider}")
        latency_ms = time.time() * 1000 - command.event_published_at
        metrics.SEND_LATENCY.labels(self.priority.value).observe(latency_ms / 1000)
        missing = rendered.missing_attachments
        if missing:
            metrics.ATTACHMENTS_MISSING.labels(command.email_type.value).inc()
        await self.report(command, DeliveryStatus.SENT, provider=result.provider,
                          provider_message_id=result.provider_message_id, latency_ms=latency_ms,
                          reason=f"sent without {', '.join(missing)}" if missing else None)

    async def _record_sent(self, key: str, value: str) -> None:
        """Write the ledger entry and wait until the broker has it: a crash right after a
        provider accepted can then repeat only the sends still in flight, not the ledger
        writes still sitting in the producer's buffer."""
        self.ledger.data[key] = value
        await self.ledger.send_changelog(self.ledger.partition_for_key(key), key, value)

    def _suppression(self, command: EmailCommand) -> str | None:
        """Scopes decide (processors/suppression.py): unsubscribing from one shop's marketing
        leaves its order confirmations, and every other shop's mail, alone."""
        entry = self.suppressions.get(recipient_key(command.recipient, self.key_secret))
        why = suppressing(entry, command.shop_id, command.email_type)
        return f"suppressed: {why}" if why else None

    def _compose(self, command: EmailCommand, rendered: RenderedEmail) -> OutgoingEmail:
        """On the event loop: 0.3-0.5 ms, 2-4 ms with a PDF. A thread pool cost more than it
        saved: the GIL allows no parallel rendering, and every hand-over woke the loop."""
        email = build_message(command, rendered, self.mail_from)
        _ = email.raw
        return email

    async def _provider_failed(self, message: Message, command: EmailCommand,
                               err: ProviderError) -> None:
        await self._retry_or_fail(message, command, err, transient=err.transient,
                                  provider=err.provider, retry_after_s=err.retry_after_s)

    async def _retry_or_fail(self, message: Message, command: EmailCommand, err: Exception, *,
                             transient: bool, provider: str | None = None,
                             retry_after_s: float | None = None, alert: bool = False) -> None:
        """Transient: to the retry topic with a not-before time while attempts remain;
        else failed (dead letter, delivery event, alert)."""
        if transient and command.attempt < self.max_attempts:
            delay = retry_delay_s(command.attempt, self.retry_base_s, self.retry_cap_s,
                                  retry_after_s)
            retry = replace(command, attempt=command.attempt + 1,
                            not_before=int((time.time() + delay) * 1000))
            await self.topics["retry"].send(
                key=message.key, value=self.registry.encode(COMMAND_SUBJECT, retry.to_record(),
                                                            check=False))
            await self.report(command, DeliveryStatus.DEFERRED, provider=provider,
                              reason=f"{err} (retry in {delay:.0f}s)"[:300])
            return
        if transient:
            err = RejectedInput(RejectReason.ATTEMPTS_EXHAUSTED,
                                f"{command.attempt} attempts: {err}"[:300])
        elif not isinstance(err, RejectedInput):
            err = RejectedInput(RejectReason.PERMANENT_PROVIDER_ERROR, str(err)[:300])
        await self._failed(message, command, err, alert=alert)

    async def _failed(self, message: Message, command: EmailCommand, err: Exception,
                      alert: bool = False) -> None:
        await self.dead.reject(message, err, stage=f"sender.{self.priority.value}")
        await self.report(command, DeliveryStatus.FAILED, reason=str(err)[:300])
        if alert or self.priority is Priority.CRITICAL:
            alert = {"type": "critical_email_failed", "idempotency_key": command.idempotency_key,
                     "email_type": command.email_type.value, "reason": str(err)[:300],
                     "at": int(time.time() * 1000)}
            await self.topics["alerts"].send(key=command.idempotency_key.encode(),
                                             value=json.dumps(alert).encode())

    async def report(self, command: EmailCommand, status: DeliveryStatus, **fields: Any) -> None:
        event = DeliveryEvent(
            event_id=delivery_event_id(command.idempotency_key, status.value, command.attempt),
            status=status, idempotency_key=command.idempotency_key, command_id=command.command_id,
            email_type=command.email_type.value, priority=command.priority.value,
            locale=command.locale, shop_id=command.shop_id,
            recipient_key=recipient_key(command.recipient, self.key_secret),
            recipient_domain=recipient_domain(command.recipient), attempt=command.attempt,
            source_event_id=command.source_event_id, occurred_at=int(time.time() * 1000),
            **fields)
        payload = self.registry.encode(f"{DELIVERY}-value", event.to_record(), check=False)
        await self.topics["delivery"].send(key=command.idempotency_key.encode(), value=payload)
        metrics.DELIVERIES.labels(self.priority.value, status.value,
                                  fields.get("provider") or "none").inc()


def register(app: faust.App, settings: Settings, registry: SchemaRegistry, dead: DeadLetters,
             chain: ProviderChain, renderer: Renderer, priority: Priority, suppressions: Any,
             render_pool: Executor) -> None:
    specs = spec_by_name(settings)
    ledger = app.Table(ledger_table(priority), default=None, partitions=settings.partitions_email,
                       key_type=str, value_type=str)
    topics = {"delivery": faust_topic(app, specs[DELIVERY]),
              "retry": faust_topic(app, specs[priority.retry_topic]),
              "alerts": faust_topic(app, specs[ALERTS])}
    stage = SenderStage(priority, registry, chain, renderer, ledger, suppressions, topics, dead,
                        settings, render_pool)
    source = faust_topic(app, specs[priority.topic])
    # Batches only help a chain with a batch API. Without one (SMTP) the one-by-one agent
    # sends as many at once as a batch would and keeps taking from its stream buffer.
    if priority is Priority.MARKETING and settings.bulk_batch_size > 1 and bulk_capable(chain):
        from streams.agents import bulk_sender
        bulk_sender.register(app, settings, stage, source)
        return

    @app.agent(source, name=f"sender_{priority.value}", concurrency=settings.sender_concurrency)
    async def sender(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await stage.handle(event.message)
