"""Every domain event but security mail's -> email commands; the profiles table; campaign
fan-out. On a batch loop (streams/batch_loop.py), not Faust.

Measured before the move: the Faust router and its producer took about a quarter of the
worker processes' CPU in the mix, and its profiles table lived in Python memory (a
million-recipient campaign needs a million profiles). Here the profiles are a
``ChangelogStore`` on local disk over the ``user.profiles`` changelog (Faust's format: the
table Faust wrote reads unchanged).

Campaigns: a valid ``campaign.launched`` is copied once to every partition of
``campaign.fanout``; whoever holds partition P of the router's group scans the profiles of P.
The consumer reads the domain topics and ``campaign.fanout`` (all with the domain partition
count) with the range assignor, so a member holds partition P of each: ``user.created`` P,
the profiles of P and the fan-out of P are in the same process, and each profile is reached
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from core.avro import SchemaRegistry
from core.catalogue import DOMAIN_TOPICS, topics_of
from core.settings import Settings
from core.vocab import Priority
from processors.commands import EmailCommand
from processors.keys import recipient_key
from processors.profiles import lookup, profile_from_user_created, profile_key
from processors.routing import fan_out_campaign, route
from streams import metrics
from streams.batch_io import BatchProducer, SourceRecord, dead_letter_sender
from streams.batch_loop import BatchLoop, LoopStage
from streams.changelog_store import ChangelogStore
from streams.dlq import DeadLetters
from streams.groups import earlier_groups
from streams.precedence import Precedence
from streams.serde import serdes
from streams.topics import CAMPAIGN_FANOUT, PROFILES

log = logging.getLogger(__name__)

STAGE = "router"
FANOUT_APP_HEADER = "flowmail-app-id"
FANOUT_CHUNK = 256          # profiles turned into commands between two turns of the loop
FANOUT_FLUSH_EVERY = 8192   # writes waiting for the broker before a flush (memory bound)
ROUTED_ELSEWHERE = frozenset(topics_of(Priority.CRITICAL))  # streams/batch_router.py


def router_topics() -> list[str]:
    """What the router's group reads: user.created for the profiles only (its email is the
    critical router's), the other domain topics, and the campaigns' fan-out copies."""
    return sorted((set(DOMAIN_TOPICS) - ROUTED_ELSEWHERE) | {"user.created", CAMPAIGN_FANOUT})


class DomainRouter(LoopStage):
    def __init__(self, settings: Settings, registry: SchemaRegistry,
                 precedence: Precedence | None = None) -> None:
        self.serdes = serdes(settings, registry, router_topics(), settings.max_payload_bytes)
        self.commands = serdes(settings, registry, [p.topic for p in Priority])
        self.precedence = precedence or Precedence()
        self.key_secret = settings.pseudonym_secret.encode()
        self.unsubscribe_secret = settings.unsubscribe_secret.encode()
        self.partitions = settings.partitions_domain
        self.app_id = settings.app_id.encode()
        self.startup_timeout_s = settings.startup_timeout_s
        self.producer = BatchProducer(settings.kafka_bootstrap)
        self._dlq_producer = BatchProducer(settings.kafka_bootstrap, **{"linger.ms": 0})
        self.dead = DeadLetters(dead_letter_sender(self._dlq_producer),
                                settings.max_payload_bytes)
        self.profiles = ChangelogStore(settings.kafka_bootstrap, PROFILES, self.producer,
                                       settings.state_dir)
        self.loops = [BatchLoop(settings.kafka_bootstrap, f"{settings.app_id}-router",
                                router_topics(), self.handle, take_max=500,
                                adopt_from=earlier_groups(settings.app_id),
                                on_assign=self._assigned, on_revoke=self.profiles.drop,
                                assignment="range", label="router",
                                startup_timeout_s=settings.startup_timeout_s)]

    async def close(self) -> None:
        self.producer.close()
        self._dlq_producer.close()
        self.profiles.close()

    def _assigned(self, partitions: list[int]) -> None:
        began = time.monotonic()
        held = self.profiles.restore(set(partitions), self.startup_timeout_s)
        if partitions:
            log.info("router: assigned %s; profiles restored (%d) in %.2fs",
                     sorted(set(partitions)), held, time.monotonic() - began)

    async def handle(self, records: list[SourceRecord]) -> None:
        """Events first, fan-outs after: a campaign's thousands of commands do not hold up
        the order confirmations taken with it. While the critical lane handles a batch, the
        router waits as the senders do (its writes keep the broker busy)."""
        await self.precedence.wait_turn()
        fanouts = []
        for record in records:
            if record.topic == CAMPAIGN_FANOUT:
                fanouts.append(record)
            elif record.topic in ROUTED_ELSEWHERE:
                self._keep_profile(record)
            else:
                await self._route(record)
        await self.producer.flush()
        for record in fanouts:
            await self._fan_out(record)
            await self.producer.flush()

    def _keep_profile(self, record: SourceRecord) -> None:
        """user.created feeds the profiles; the critical router sends its email and
        dead-letters it when unreadable."""
        if record.topic != "user.created":
            return
        with contextlib.suppress(Exception):  # unreadable: the critical router dead-letters it
            event = self.serdes[record.topic].decode(record.value)
            self.profiles.put(record.partition,
                              profile_key(event["shop"]["shop_id"], event["user"]["user_id"]),
                              profile_from_user_created(event, record.partition))

    async def _route(self, record: SourceRecord) -> None:
        now = int(time.time() * 1000)
        published = record.timestamp if record.timestamp > 0 else now

        def profile(shop_id: str, user_id: str) -> dict[str, Any] | None:
            return lookup(_PartitionView(self.profiles, record.partition), shop_id, user_id)

        def routed() -> list[tuple[EmailCommand, bytes]]:
            event = self.serdes[record.topic].decode(record.value)
            return self._encode(route(record.topic, event, published, now, profile))

        encoded = await self.dead.attempt(record, STAGE, routed)
        if encoded is None:
            return
        if record.topic == "campaign.launched":
            self._broadcast(record)
        self._publish(encoded)
        metrics.EVENTS_ROUTED.labels(record.topic).inc()

    def _encode(self, commands: list[EmailCommand]) -> list[tuple[EmailCommand, bytes]]:
        return [(c, self.commands[c.priority.topic].encode(c)) for c in commands]

    def _publish(self, encoded: list[tuple[EmailCommand, bytes]]) -> None:
        for command, payload in encoded:
            key = recipient_key(command.recipient, self.key_secret).encode()
            self.producer.produce(command.priority.topic, key, payload)
            metrics.COMMANDS.labels(command.priority.value, command.email_type.value).inc()

    def _broadcast(self, record: SourceRecord) -> None:
        """One copy per partition, marked with this app id: campaign.fanout is shared, and a
        second app reading the same domain topics (another consumer group: a blue/green
        deploy, a benchmark) must not make this app send the campaign twice."""
        for partition in range(self.partitions):
            self.producer.produce(CAMPAIGN_FANOUT, record.key, record.value,
                                  [(FANOUT_APP_HEADER, self.app_id)], partition=partition,
                                  timestamp=record.timestamp)

    async def _fan_out(self, record: SourceRecord) -> None:
        """This partition's share of a campaign, FANOUT_CHUNK profiles at a time, read from
        disk as it goes (a million profiles never sit in memory at once)."""
        if not self._own_copy(record):
            return
        now = int(time.time() * 1000)
        published = record.timestamp if record.timestamp > 0 else now
        partition = record.partition

        async def fan_out() -> int:
            event = self.serdes[CAMPAIGN_FANOUT].decode(record.value)
            rejected, chunk = 0, []
            for profile in self.profiles.values(partition):
                if profile and profile.get("partition", partition) == partition:
                    chunk.append(profile)
                if len(chunk) == FANOUT_CHUNK:
                    rejected += await self._fan_out_chunk(event, chunk, published, now)
                    chunk = []
            return rejected + await self._fan_out_chunk(event, chunk, published, now)

        rejected = await self.dead.attempt(record, STAGE, fan_out)
        if rejected is None:
            return
        if rejected:
            log.warning("campaign fan-out on partition %s skipped %s stored profiles with "
                        "invalid addresses", partition, rejected)
        metrics.EVENTS_ROUTED.labels(CAMPAIGN_FANOUT).inc()

    async def _fan_out_chunk(self, event: dict[str, Any], chunk: list[dict[str, Any]],
                             published: int, now: int) -> int:
        """Produce one chunk's commands; returns the profiles it skipped."""
        await self.precedence.wait_turn()
        commands, skipped = fan_out_campaign(event, "campaign.launched", chunk, published,
                                             now, self.unsubscribe_secret, self.key_secret)
        self._publish(self._encode(commands))
        if self.producer.waiting >= FANOUT_FLUSH_EVERY:
            await self.producer.flush()  # bounds what waits in memory for the broker
        else:
            await asyncio.sleep(0)  # the senders of this process get a turn
        return skipped

    def _own_copy(self, record: SourceRecord) -> bool:
        origin = next((value for name, value in record.headers or ()
                       if name == FANOUT_APP_HEADER), None)
        return origin is None or origin == self.app_id  # unmarked: older copies


class _PartitionView:
    """``lookup``'s table: the profiles of one partition."""

    def __init__(self, store: ChangelogStore, partition: int) -> None:
        self.store, self.partition = store, partition

    def get(self, key: str) -> Any:
        return self.store.get(self.partition, key)
