"""Email commands of one priority -> provider, with the idempotency ledger and delivery events."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from flowmail.avro import SchemaRegistry
from flowmail.settings import Settings
from flowmail.vocab import DeliveryStatus, Priority
from processors.commands import DeliveryEvent, EmailCommand
from processors.keys import delivery_event_id, recipient_domain, recipient_key
from processors.message import build_message
from processors.rendering import Renderer
from providers.base import Provider, ProviderError
from streams import metrics
from streams.dlq import DeadLetters
from streams.topics import COMMAND_SUBJECT, DELIVERY, faust_topic, ledger_table, spec_by_name

if TYPE_CHECKING:
    import faust
    from faust.types import Message

log = logging.getLogger(__name__)

# Ledger values: "sending" is written before the provider call, "sent:<provider>" after.
SENDING = "sending"


class SenderStage:
    """One command at a time: ledger check, render, send, record, report."""

    def __init__(self, priority: Priority, registry: SchemaRegistry, provider: Provider,
                 renderer: Renderer, ledger: Any, delivery: faust.TopicT, dead: DeadLetters,
                 settings: Settings, render_pool: Executor) -> None:
        self.priority, self.registry, self.provider = priority, registry, provider
        self.renderer, self.ledger, self.delivery, self.dead = renderer, ledger, delivery, dead
        self.mail_from = settings.mail_from
        self.render_pool = render_pool
        self.key_secret = settings.pseudonym_secret.encode()

    async def handle(self, message: Message) -> None:
        try:
            command = EmailCommand.from_record(self.registry.decode(COMMAND_SUBJECT, message.value))
            previous = self.ledger.get(command.idempotency_key)
            if previous is not None and previous.startswith("sent"):
                await self.report(command, DeliveryStatus.SKIPPED_DUPLICATE,
                                  reason=f"ledger: {previous}")
                return
            email = await asyncio.get_running_loop().run_in_executor(
                self.render_pool, self._compose, command)
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await self.dead.reject(message, err, stage=f"sender.{self.priority.value}")
            return
        self.ledger[command.idempotency_key] = SENDING
        try:
            result = await self.provider.send(email)
        except ProviderError as err:
            await self._failed(message, command, err)
            return
        self.ledger[command.idempotency_key] = f"sent:{result.provider}"
        latency_ms = time.time() * 1000 - command.event_published_at
        metrics.SEND_LATENCY.labels(self.priority.value).observe(latency_ms / 1000)
        await self.report(command, DeliveryStatus.SENT, provider=result.provider,
                          provider_message_id=result.provider_message_id, latency_ms=latency_ms)

    def _compose(self, command: EmailCommand) -> EmailMessage:
        """Off the event loop: a PDF takes 25-300 ms of CPU."""
        return build_message(command, self.renderer.render(command), self.mail_from)

    async def _failed(self, message: Message, command: EmailCommand, err: ProviderError) -> None:
        """Until retry topics land (issue 5) every provider failure is final and dead-lettered."""
        del self.ledger[command.idempotency_key]
        await self.dead.reject(message, err, stage=f"sender.{self.priority.value}")
        await self.report(command, DeliveryStatus.FAILED, provider=err.provider,
                          reason=str(err)[:300])

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
        payload = self.registry.encode(f"{DELIVERY}-value", event.to_record())
        await self.delivery.send(key=command.idempotency_key.encode(), value=payload)
        metrics.DELIVERIES.labels(self.priority.value, status.value,
                                  fields.get("provider") or "none").inc()


def register(app: faust.App, settings: Settings, registry: SchemaRegistry, dead: DeadLetters,
             provider: Provider, renderer: Renderer, priority: Priority,
             render_pool: Executor) -> None:
    specs = spec_by_name(settings)
    ledger = app.Table(ledger_table(priority), default=None, partitions=settings.partitions_email,
                       key_type=str, value_type=str)
    stage = SenderStage(priority, registry, provider, renderer, ledger,
                        faust_topic(app, specs[DELIVERY]), dead, settings, render_pool)

    @app.agent(faust_topic(app, specs[priority.topic]), name=f"sender_{priority.value}")
    async def sender(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await stage.handle(event.message)
