"""Domain events -> email commands on the per-priority topics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from flowmail.avro import SchemaRegistry
from flowmail.settings import Settings
from flowmail.vocab import Priority, RejectReason
from processors.errors import RejectedInput
from processors.keys import recipient_key
from processors.routing import ROUTES, route
from streams import metrics
from streams.dlq import DeadLetters
from streams.topics import COMMAND_SUBJECT, faust_topic, faust_topics, spec_by_name

if TYPE_CHECKING:
    import faust
    from faust.types import Message


class RouterStage:
    """Decode, route (pure), encode and publish; every failure becomes a dead letter."""

    def __init__(self, registry: SchemaRegistry, commands: dict[Priority, faust.TopicT],
                 dead: DeadLetters, settings: Settings) -> None:
        self.registry, self.commands, self.dead = registry, commands, dead
        self.max_bytes = settings.max_payload_bytes
        self.key_secret = settings.pseudonym_secret.encode()

    async def handle(self, message: Message) -> None:
        try:
            value = message.value or b""
            if len(value) > self.max_bytes:
                raise RejectedInput(RejectReason.OVERSIZED, f"{len(value)} bytes > "
                                    f"FLOWMAIL_MAX_PAYLOAD_BYTES={self.max_bytes}")
            event = self.registry.decode(f"{message.topic}-value", value)
            now = int(time.time() * 1000)
            published = int(message.timestamp * 1000) if message.timestamp else now
            commands = route(message.topic, event, published, now)
            encoded = [(c, self.registry.encode(COMMAND_SUBJECT, c.to_record())) for c in commands]
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await self.dead.reject(message, err, stage="router")
            return
        for command, payload in encoded:
            key = recipient_key(command.recipient, self.key_secret).encode()
            await self.commands[command.priority].send(key=key, value=payload)
            metrics.COMMANDS.labels(command.priority.value, command.email_type.value).inc()
        metrics.EVENTS_ROUTED.labels(message.topic).inc()


def register(app: faust.App, settings: Settings, registry: SchemaRegistry,
             dead: DeadLetters) -> None:
    specs = spec_by_name(settings)
    commands = {p: faust_topic(app, specs[p.topic]) for p in Priority}
    stage = RouterStage(registry, commands, dead, settings)

    @app.agent(faust_topics(app, settings, sorted(ROUTES)), name="router")
    async def router(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await stage.handle(event.message)
