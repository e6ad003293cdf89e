"""One priority's email commands on confluent-kafka, a batch at a time: the per-email hot path.

Each batch (up to ``BATCH_MAX`` commands): decode; skip what the ledger has sent and what is
suppressed (reported); render and send concurrently through the provider chain; write the
ledger entries, delivery events, retries and alerts; wait for the broker's acknowledgement of
all of them; only then commit the batch's offsets. A crash therefore repeats at most the
sends in flight (at least once); the ledger, restored from its changelog on every
assignment, stops every other repeat. Why not Faust's per-event Stream here:
docs/performance.md, "The batch engine".
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from core.avro import SchemaRegistry
from core.catalogue import EmailType
from core.settings import Settings, name_values
from core.vocab import DeliveryStatus, Priority
from processors.bulk import group, render_personal
from processors.commands import EmailCommand
from processors.delivery import (
    Retry,
    admission,
    after_failure,
    delivery_record,
    failure_alert,
    send_time_bounce,
)
from processors.errors import AttachmentFailed
from processors.keys import recipient_key
from processors.message import build_message
from processors.rendering import RenderedEmail, Renderer
from providers.base import ProviderError
from providers.chain import ProviderChain, bulk_capable
from providers.scoring import REGION_OF_LOCALE
from streams import metrics
from streams.batch_io import BatchProducer, SourceRecord, dead_letter_sender
from streams.batch_loop import BatchLoop, LoopStage
from streams.bulk_calls import BulkCalls
from streams.changelog_store import ChangelogStore, SuppressionView
from streams.dlq import DeadLetters
from streams.groups import earlier_groups
from streams.precedence import Precedence
from streams.sending import sender_tracker
from streams.serde import serde
from streams.topics import ALERTS, DELIVERY, SUPPRESSIONS, ledger_changelog

log = logging.getLogger(__name__)

BATCH_MAX = 500  # commands taken at once
# A ledger entry leaves for the broker this long after its put at most: a kill -9 sends again
# what the provider accepted in this window, the broker's round trip and the event loop's delay
# before the put. The batch's other writes wait for one flush (streams/batch_io.py, LINGER_MS);
# with those 100 ms for the ledger too, a kill sent 113 of 1,500 twice
# (tests/integration/test_zz_crash_recovery.py); with 1 ms, 4, 6 and 10 in three kills, but a
# produce request every millisecond cost the broker 2.9 s and the workers 3.2 s more CPU per
# 20,000 emails than 100 ms; 10 ms: 5 and 9 of 1,500, +0.8 s and +1.2 s (docs/performance.md).
LEDGER_LINGER_MS = 10


def sender_group(settings: Settings, priority: Priority) -> str:
    return f"{settings.app_id}-sender-{priority.value}"


def uses_batch_api(priority: Priority, settings: Settings, chain: ProviderChain) -> bool:
    """Marketing through a provider's batch API (SendGrid, Mailgun) a thousand recipients a
    call (streams/bulk_calls.py); everything else one by one, many at once."""
    return (priority is Priority.MARKETING and settings.bulk_batch_size > 1
            and bool(bulk_capable(chain)))


class BatchSender(LoopStage):
    def __init__(self, priority: Priority, settings: Settings, registry: SchemaRegistry,
                 chain: ProviderChain, renderer: Renderer, suppressions: SuppressionView,
                 precedence: Precedence | None = None) -> None:
        self.priority, self.settings = priority, settings
        self.commands = serde(settings, registry, priority.topic)
        self.retries = serde(settings, registry, priority.retry_topic)
        self.deliveries = serde(settings, registry, DELIVERY)
        self.chain, self.renderer, self.suppressions = chain, renderer, suppressions
        self.precedence = precedence or Precedence()
        self.stage = f"sender.{priority.value}"
        self.group = sender_group(settings, priority)
        bootstrap = settings.kafka_bootstrap
        self.producer = BatchProducer(bootstrap)
        self.ledger_producer = BatchProducer(bootstrap, **{"linger.ms": LEDGER_LINGER_MS})
        self._dlq_producer = BatchProducer(bootstrap, **{"linger.ms": 0})
        self.dead = DeadLetters(dead_letter_sender(self._dlq_producer),
                                settings.max_payload_bytes)
        self.ledger = ChangelogStore(bootstrap, ledger_changelog(settings.app_id, priority),
                                     self.ledger_producer, settings.state_dir)
        self.bulk = BulkCalls(self, settings.mail_from, self._one_by_one) if uses_batch_api(
            priority, settings, chain) else None
        # a batch API call is worth waiting for; an email to send one by one is not
        self.take_max = settings.bulk_batch_size if self.bulk else BATCH_MAX
        self.fill_wait_s = settings.bulk_batch_seconds if self.bulk else 0.0
        self.key_secret = settings.pseudonym_secret.encode()
        self.tracker = sender_tracker(settings)
        self.max_attempts = int(name_values(settings.retry_max_attempts, "retry_max_attempts",
                                            int).get(priority.value, 3))
        self.concurrency = max(1, settings.sender_concurrency)
        self.loops = [BatchLoop(
            bootstrap, sender_group(settings, priority), [priority.topic], self.handle,
            take_max=self.take_max, fill_wait_s=self.fill_wait_s,
            adopt_from=earlier_groups(settings.app_id),
            on_assign=self._assigned, on_revoke=self.ledger.drop,
            startup_timeout_s=settings.startup_timeout_s)]

    async def close(self) -> None:
        self.producer.close()
        self.ledger_producer.close()
        self._dlq_producer.close()
        self.ledger.close()

    def _assigned(self, partitions: list[int]) -> None:
        """In the consume call, before any record of these partitions is returned."""
        began = time.monotonic()
        held = self.ledger.restore(partitions, self.settings.startup_timeout_s)
        if partitions:
            log.info("%s: assigned %s; ledger restored (%d entries) in %.2fs", self.stage,
                     sorted(partitions), held, time.monotonic() - began)

    # -- one batch ----------------------------------------------------------------------
    async def handle(self, records: list[SourceRecord]) -> None:
        if self.priority is Priority.CRITICAL:
            with self.precedence.urgent():
                await self._handle(records)
        else:
            await self._handle(records)

    async def _handle(self, records: list[SourceRecord]) -> None:
        self.suppressions.catch_up()
        jobs: list[tuple[SourceRecord, EmailCommand]] = []
        in_batch: set[str] = set()
        for record in records:
            command = await self._admit(record, in_batch)
            if command is not None:
                in_batch.add(command.idempotency_key)
                jobs.append((record, command))
        if self.bulk is not None:
            await self.bulk.send(jobs)
        else:
            await self._one_by_one(jobs)
        await asyncio.gather(self.ledger_producer.flush(),
                             self.producer.flush())  # delivery events, retries, alerts

    async def _one_by_one(self, jobs: list[tuple[SourceRecord, EmailCommand]]) -> None:
        """``concurrency`` tasks take the batch's emails in turn (not a task per email)."""
        prerendered = self._prerender([command for _, command in jobs])
        waiting = iter(jobs)

        async def take_turns() -> None:
            for record, command in waiting:
                await self._deliver(record, command, prerendered.get(command.command_id))

        await asyncio.gather(*(take_turns() for _ in range(min(self.concurrency, len(jobs)))))

    def _prerender(self, commands: list[EmailCommand]) -> dict[str, RenderedEmail]:
        """Campaign mail of one (campaign, variant, locale) is rendered once per batch."""
        campaign = [c for c in commands if c.email_type is EmailType.MARKETING_CAMPAIGN]
        done: dict[str, RenderedEmail] = {}
        for members in group(campaign):
            if len(members) < 2:
                continue
            try:
                rendered = render_personal(self.renderer, members, self.tracker)
            except Exception:  # noqa: BLE001, S112 - each is then rendered, and fails, alone
                continue
            done.update(zip([c.command_id for c in members], rendered, strict=True))
        return done

    async def _admit(self, record: SourceRecord, in_batch: set[str]) -> EmailCommand | None:
        command = await self.dead.attempt(record, self.stage, lambda: EmailCommand.from_record(
            self.commands.decode(record.value, millis=True)))
        if command is None:
            return None
        key = command.idempotency_key
        refusal = admission(
            command, key in in_batch, self.ledger.get(record.partition, key),
            self.suppressions.get(recipient_key(command.recipient, self.key_secret)))
        if refusal is None:
            return command
        if refusal.status is DeliveryStatus.AMBIGUOUS:
            metrics.AMBIGUOUS.labels(self.priority.value).inc()
        self.report(command, refusal.status, reason=refusal.reason)
        return None

    async def _deliver(self, record: SourceRecord, command: EmailCommand,
                       prerendered: RenderedEmail | None = None) -> None:
        if self.priority is not Priority.CRITICAL:
            await self.precedence.wait_turn()
        try:
            rendered = prerendered or self._render(command)
            email = build_message(command, rendered, self.settings.mail_from)
            _ = email.raw
        except AttachmentFailed as err:
            await self.retry_or_fail(record, command, err, transient=True, alert=True)
            return
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await self._failed(record, command, err)
            return
        try:
            result = await self.chain.send(email, REGION_OF_LOCALE.get(command.locale, ""))
        except ProviderError as err:
            await self.retry_or_fail(record, command, err, transient=err.transient,
                                      provider=err.provider, retry_after_s=err.retry_after_s)
            return
        self.ledger.put(record.partition, command.idempotency_key, f"sent:{result.provider}")
        latency_ms = time.time() * 1000 - command.event_published_at
        metrics.labelled(metrics.SEND_LATENCY, self.priority.value).observe(latency_ms / 1000)
        missing = rendered.missing_attachments
        if missing:
            metrics.ATTACHMENTS_MISSING.labels(command.email_type.value).inc()
        self.report(command, DeliveryStatus.SENT, provider=result.provider,
                    provider_message_id=result.provider_message_id, latency_ms=latency_ms,
                    reason=f"sent without {', '.join(missing)}" if missing else None)

    def _render(self, command: EmailCommand) -> RenderedEmail:
        rendered = self.renderer.render(command)
        if self.tracker is not None and self.tracker.enabled(command):
            rendered = self.tracker.apply(rendered, command, self.tracker.recipient_token(command))
        return rendered

    async def retry_or_fail(self, record: SourceRecord, command: EmailCommand, err: Exception,
                             *, transient: bool, provider: str | None = None,
                             retry_after_s: float | None = None, alert: bool = False) -> None:
        outcome = after_failure(command, err, transient=transient,
                                max_attempts=self.max_attempts,
                                base_s=self.settings.retry_base_s,
                                cap_s=self.settings.retry_cap_s, retry_after_s=retry_after_s)
        if isinstance(outcome, Retry):
            self.producer.produce(self.priority.retry_topic, record.key,
                                  self.retries.encode(outcome.command))
            self.report(command, DeliveryStatus.DEFERRED, provider=provider,
                        reason=f"{err} (retry in {outcome.delay_s:.0f}s)"[:300])
            return
        await self._failed(record, command, outcome, alert=alert)
        if isinstance(err, ProviderError) and err.bounce:
            self._hard_bounce(command, err)

    def _hard_bounce(self, command: EmailCommand, err: ProviderError) -> None:
        """The receiver said the address does not exist: a bounce, and its suppression."""
        self.report(command, DeliveryStatus.BOUNCED, provider=err.provider, bounce_type="hard",
                    reason=str(err)[:300])
        self.producer.produce(SUPPRESSIONS, recipient_key(command.recipient, self.key_secret)
                              .encode(), json.dumps(send_time_bounce(err.provider)).encode())

    async def _failed(self, record: SourceRecord, command: EmailCommand, err: Exception,
                      alert: bool = False) -> None:
        await self.dead.reject(record, err, stage=self.stage)
        self.report(command, DeliveryStatus.FAILED, reason=str(err)[:300])
        if alert or self.priority is Priority.CRITICAL:
            self.producer.produce(ALERTS, command.idempotency_key.encode(), json.dumps(
                failure_alert(command, str(err))).encode())

    def report(self, command: EmailCommand, status: DeliveryStatus, **fields: Any) -> None:
        self.producer.produce(DELIVERY, command.idempotency_key.encode(),
                              self.deliveries.encode(delivery_record(
                                  command, status, self.key_secret, **fields)))
        metrics.labelled(metrics.DELIVERIES, self.priority.value, status.value,
                         fields.get("provider") or "none").inc()
