"""Security mail's domain events (sign-ups, password resets) -> critical commands, on a batch
loop of their own.

Measured in the mix: routed by the Faust router among thousands of order events and a
campaign's fan-out, a password reset waited 2.5 s (p50) to 5.7 s (p95) before its command
was written, on a busy event loop and behind Faust's single delivery loop. Here they have
their own consumer group (``<app id>-router-critical``), take precedence over the other
senders of the process (streams/precedence.py), and need no state: these routes read no
profile. The Faust router still reads ``user.created`` to keep the profiles table (for
shipment mail and campaigns), without routing it again.
"""

from __future__ import annotations

import time

from core.avro import SchemaRegistry
from core.catalogue import topics_of
from core.settings import Settings
from core.vocab import Priority
from processors.commands import EmailCommand
from processors.keys import recipient_key
from processors.routing import route
from streams import metrics
from streams.batch_io import BatchProducer, SourceRecord, dead_letter_sender
from streams.batch_loop import BatchLoop, LoopStage
from streams.dlq import DeadLetters
from streams.groups import earlier_groups
from streams.precedence import Precedence
from streams.serde import serde, serdes

STAGE = "router.critical"


class CriticalRouter(LoopStage):
    def __init__(self, settings: Settings, registry: SchemaRegistry,
                 precedence: Precedence) -> None:
        self.precedence = precedence
        self.events = serdes(settings, registry, topics_of(Priority.CRITICAL),
                             settings.max_payload_bytes)
        self.commands = serde(settings, registry, Priority.CRITICAL.topic)
        self.key_secret = settings.pseudonym_secret.encode()
        self.producer = BatchProducer(settings.kafka_bootstrap, **{"linger.ms": 0})
        self._dlq_producer = BatchProducer(settings.kafka_bootstrap, **{"linger.ms": 0})
        self.dead = DeadLetters(dead_letter_sender(self._dlq_producer),
                                settings.max_payload_bytes)
        # one consumer for both topics: one group joined once, its offsets adopted once
        self.loops = [BatchLoop(settings.kafka_bootstrap, f"{settings.app_id}-router-critical",
                                topics_of(Priority.CRITICAL), self.handle, take_max=500,
                                label="router-critical",
                                adopt_from=earlier_groups(settings.app_id),
                                startup_timeout_s=settings.startup_timeout_s)]

    async def close(self) -> None:
        self.producer.close()
        self._dlq_producer.close()

    async def handle(self, records: list[SourceRecord]) -> None:
        with self.precedence.urgent():
            for record in records:
                await self._route(record)
            await self.producer.flush()

    async def _route(self, record: SourceRecord) -> None:
        now = int(time.time() * 1000)
        published = record.timestamp if record.timestamp > 0 else now
        def routed() -> list[tuple[EmailCommand, bytes]]:
            event = self.events[record.topic].decode(record.value)
            return [(c, self.commands.encode(c)) for c in route(record.topic, event, published,
                                                                 now)]

        encoded = await self.dead.attempt(record, STAGE, routed)
        if encoded is None:
            return
        for command, payload in encoded:
            key = recipient_key(command.recipient, self.key_secret).encode()
            self.producer.produce(command.priority.topic, key, payload)
            metrics.COMMANDS.labels(command.priority.value, command.email_type.value).inc()
        metrics.EVENTS_ROUTED.labels(record.topic).inc()
