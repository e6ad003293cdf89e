"""Domain events -> email commands on the per-priority topics; campaign fan-out.

Campaigns: a valid ``campaign.launched`` is copied once to every partition of
``campaign.fanout``; the router instance owning partition P then scans the profiles it holds
for P. The profiles table and campaign.fanout have the domain topics' partition count, so the
scan is local and each profile is reached exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from flowmail.avro import SchemaRegistry
from flowmail.settings import Settings
from flowmail.vocab import Priority
from processors.commands import EmailCommand
from processors.keys import recipient_key
from processors.profiles import lookup, profile_from_user_created, profile_key
from processors.routing import ROUTES, fan_out_campaign, route, topics_of
from processors.validation import payload_size
from streams import metrics
from streams.dlq import DeadLetters
from streams.topics import (
    CAMPAIGN_FANOUT,
    COMMAND_SUBJECT,
    PROFILES,
    faust_topic,
    faust_topics,
    spec_by_name,
)

if TYPE_CHECKING:
    import faust
    from faust.types import Message

log = logging.getLogger(__name__)
# Producing rarely waits, so a fan-out of 20,000 commands would hold the event loop for
# seconds; every YIELD_EVERY commands the other agents (a password reset) get a turn.
YIELD_EVERY = 64
FANOUT_CHUNK = 256
FANOUT_APP_HEADER = "flowmail-app-id"
ROUTED_ELSEWHERE = set(topics_of(Priority.CRITICAL))  # streams/batch_router.py


def _clock(message: Message) -> tuple[int, int]:
    """(published, now) in ms: the event's Kafka timestamp starts its latency clock."""
    now = int(time.time() * 1000)
    return (int(message.timestamp * 1000) if message.timestamp else now), now


class RouterStage:
    """Decode, route (pure), encode and publish; every failure becomes a dead letter."""

    def __init__(self, registry: SchemaRegistry, commands: dict[Priority, faust.TopicT],
                 fanout: faust.TopicT, profiles: Any, dead: DeadLetters,
                 settings: Settings) -> None:
        self.registry, self.commands, self.fanout = registry, commands, fanout
        self.profiles, self.dead = profiles, dead
        self.max_bytes = settings.max_payload_bytes
        self.key_secret = settings.pseudonym_secret.encode()
        self.unsubscribe_secret = settings.unsubscribe_secret.encode()
        self.partitions = settings.partitions_domain
        self.app_id = settings.app_id

    async def handle(self, message: Message) -> None:
        if message.topic == CAMPAIGN_FANOUT:
            await self._fan_out(message)
            return
        if message.topic in ROUTED_ELSEWHERE:
            self._keep_profile(message)
            return
        try:
            value = payload_size(message.value or b"", self.max_bytes)
            published, now = _clock(message)
            event = self.registry.decode(f"{message.topic}-value", value)
            commands = route(message.topic, event, published, now, self._profile)
            encoded = self._encode(commands)
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await self.dead.reject(message, err, stage="router")
            return
        if message.topic == "campaign.launched":
            await self._broadcast(message)
        await self._publish(encoded)
        metrics.EVENTS_ROUTED.labels(message.topic).inc()

    def _keep_profile(self, message: Message) -> None:
        """user.created feeds the profiles table here; its email is routed by the critical
        batch router (streams/batch_router.py), which also dead-letters what is unreadable."""
        if message.topic != "user.created":
            return
        try:
            value = payload_size(message.value or b"", self.max_bytes)
            event = self.registry.decode(f"{message.topic}-value", value)
            profile = profile_from_user_created(event, message.partition)
            key = profile_key(event["shop"]["shop_id"], event["user"]["user_id"])
        except Exception:  # noqa: BLE001 - dead-lettered by the critical router
            return
        self.profiles[key] = profile

    def _profile(self, shop_id: str, user_id: str) -> dict[str, Any] | None:
        return lookup(self.profiles, shop_id, user_id)

    def _encode(self, commands: list[EmailCommand]) -> list[tuple[EmailCommand, bytes]]:
        return [(c, self.registry.encode(COMMAND_SUBJECT, c.to_record(), check=False))
                for c in commands]

    async def _fan_out(self, message: Message) -> None:
        """This partition's share of a campaign, FANOUT_CHUNK profiles at a time: building
        20,000 commands in one go held the event loop for a second."""
        if not self._own_copy(message):
            return
        published, now = _clock(message)
        try:
            event = self.registry.decode("campaign.launched-value", message.value or b"")
            mine = [p for p in self.profiles.values()
                    if p and p["partition"] == message.partition]
            rejected = 0
            for start in range(0, max(len(mine), 1), FANOUT_CHUNK):
                commands, skipped = fan_out_campaign(
                    event, "campaign.launched", mine[start:start + FANOUT_CHUNK], published,
                    now, self.unsubscribe_secret, self.key_secret)
                rejected += skipped
                await self._publish(self._encode(commands))
                await asyncio.sleep(0)
        except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
            await self.dead.reject(message, err, stage="router")
            return
        if rejected:
            log.warning("campaign fan-out on partition %s skipped %s stored profiles with "
                        "invalid addresses", message.partition, rejected)
        metrics.EVENTS_ROUTED.labels(message.topic).inc()

    async def _broadcast(self, message: Message) -> None:
        """One copy per partition, marked with this app id: campaign.fanout is shared, and a
        second app reading the same domain topics (another consumer group: a blue/green
        deploy, a benchmark) must not make this app send the campaign twice."""
        for partition in range(self.partitions):
            await self.fanout.send(key=message.key, value=message.value, partition=partition,
                                   timestamp=message.timestamp,
                                   headers={FANOUT_APP_HEADER: self.app_id.encode()})

    def _own_copy(self, message: Message) -> bool:
        headers = message.headers or {}
        items = headers.items() if isinstance(headers, dict) else headers
        origin = next((value for name, value in items if name == FANOUT_APP_HEADER), None)
        return origin is None or origin == self.app_id.encode()  # unmarked: older copies

    async def _publish(self, encoded: list[tuple[EmailCommand, bytes]]) -> None:
        for index, (command, payload) in enumerate(encoded):
            if index % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
            key = recipient_key(command.recipient, self.key_secret).encode()
            await self.commands[command.priority].send(key=key, value=payload)
            metrics.COMMANDS.labels(command.priority.value, command.email_type.value).inc()


def register(app: faust.App, settings: Settings, registry: SchemaRegistry,
             dead: DeadLetters) -> None:
    specs = spec_by_name(settings)
    commands = {p: faust_topic(app, specs[p.topic]) for p in Priority}
    profiles = app.Table("profiles", default=None, partitions=settings.partitions_domain,
                         changelog_topic=app.topic(PROFILES, partitions=settings.partitions_domain,
                                                   compacting=True, deleting=False))
    fanout = faust_topic(app, specs[CAMPAIGN_FANOUT])
    stage = RouterStage(registry, commands, fanout, profiles, dead, settings)

    # Security mail is routed by the critical batch router; user.created still comes here
    # for the profiles table.
    topics = sorted((set(ROUTES) - ROUTED_ELSEWHERE) | {"user.created"})

    @app.agent(faust_topics(app, settings, topics), name="router")
    async def router(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await stage.handle(event.message)

    # Its own agent: a campaign's fan-out (tens of thousands of commands) must not hold up
    # the password reset published a second later. Same partition count as the profiles
    # table, and every worker runs both, so Faust co-partitions them.
    @app.agent(fanout, name="campaign_fanout")
    async def campaign_fanout(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await stage.handle(event.message)
