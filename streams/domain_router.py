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
import datetime as dt
import logging
import time
from typing import Any

from core.avro import SchemaRegistry
from core.catalogue import DOMAIN_TOPICS, topics_of
from core.opensearch_client import delete_events
from core.settings import Settings
from core.vocab import Priority
from processors.campaign_runs import validate_control
from processors.commands import EmailCommand
from processors.consent import validate_change
from processors.erasure import analytics_query, receipt, validate_request
from processors.keys import recipient_key
from processors.profiles import (
    lookup,
    profile_from_user_created,
    profile_key,
    profile_with_consent,
)
from processors.routing import route
from streams import metrics
from streams.batch_io import BatchProducer, SourceRecord, dead_letter_sender
from streams.batch_loop import BatchLoop, LoopStage
from streams.campaign_runner import APP_HEADER, CampaignRunner, origin
from streams.changelog_store import ChangelogStore
from streams.dlq import DeadLetters
from streams.groups import earlier_groups
from streams.precedence import Precedence
from streams.serde import serdes
from streams.topics import (
    CAMPAIGN_CONTROL,
    CAMPAIGN_FANOUT,
    CONSENT,
    ERASURE,
    ERASURES,
    PROFILES,
    ErasureLimits,
)

log = logging.getLogger(__name__)

STAGE = "router"
ROUTED_ELSEWHERE = frozenset(topics_of(Priority.CRITICAL))  # streams/batch_router.py


def router_topics() -> list[str]:
    """What the router's group reads: user.created for the profiles only (its email is the
    critical router's), the other domain topics, the campaigns' fan-out copies and commands,
    the consent changes the profiles keep and the erasure requests that delete them."""
    return sorted((set(DOMAIN_TOPICS) - ROUTED_ELSEWHERE)
                  | {"user.created", CAMPAIGN_FANOUT, CAMPAIGN_CONTROL, CONSENT, ERASURE})


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
        self.settings = settings
        self.roll_every_s = ErasureLimits.of(settings).segment_ms / 1000
        self.receipts = serdes(settings, registry, [ERASURES])[ERASURES]
        self.campaigns = CampaignRunner(settings, self.producer, self.profiles,
                                        self.serdes[CAMPAIGN_FANOUT],
                                        self.serdes[CAMPAIGN_CONTROL], self._publish_commands)
        self.loops = [BatchLoop(settings.kafka_bootstrap, f"{settings.app_id}-router",
                                router_topics(), self.handle, take_max=500,
                                adopt_from=earlier_groups(settings.app_id),
                                on_assign=self._assigned, on_revoke=self._revoked,
                                assignment="range", label="router", tick=self._tick,
                                startup_timeout_s=settings.startup_timeout_s)]

    async def close(self) -> None:
        self.producer.close()
        self._dlq_producer.close()
        self.profiles.close()
        self.campaigns.close()

    def _assigned(self, partitions: list[int]) -> None:
        began = time.monotonic()
        held = self.profiles.restore(set(partitions), self.startup_timeout_s)
        self.campaigns.restore(sorted(set(partitions)), self.startup_timeout_s)
        if partitions:
            log.info("router: assigned %s; profiles restored (%d) in %.2fs",
                     sorted(set(partitions)), held, time.monotonic() - began)

    def _revoked(self, partitions: list[int]) -> None:
        self.profiles.drop(partitions)
        self.campaigns.drop(partitions)

    async def _tick(self) -> bool:
        """Between two batches (or an idle wait): every held campaign run takes a step, and
        quiet profile partitions get a roll marker (erasure within the bound). True: a run
        has more to hand out at once (the loop then waits for no event)."""
        self.profiles.keep_rolling(self.roll_every_s)
        return await self.campaigns.step(self.precedence.wait_turn)

    async def handle(self, records: list[SourceRecord]) -> None:
        """Events, launches and campaign commands; the campaigns' recipients are handed out
        between batches (``_tick``), so a campaign's thousands of commands do not hold up
        the order confirmations taken with it. While the critical lane handles a batch, the
        router waits as the senders do (its writes keep the broker busy)."""
        await self.precedence.wait_turn()
        for record in records:
            if record.topic == CAMPAIGN_FANOUT:
                await self._launch(record)
            elif record.topic == CAMPAIGN_CONTROL:
                await self._command(record)
            elif record.topic == CONSENT:
                await self._consent(record)
            elif record.topic == ERASURE:
                await self._erase(record)
            elif record.topic in ROUTED_ELSEWHERE:
                self._keep_profile(record)
            else:
                await self._route(record)
        await self.producer.flush()

    def _keep_profile(self, record: SourceRecord) -> None:
        """user.created feeds the profiles; the critical router sends its email and
        dead-letters it when unreadable."""
        if record.topic != "user.created":
            return
        with contextlib.suppress(Exception):  # unreadable: the critical router dead-letters it
            event = self.serdes[record.topic].decode(record.value)
            key = profile_key(event["shop"]["shop_id"], event["user"]["user_id"])
            self.profiles.put(record.partition, key, profile_from_user_created(
                event, record.partition, self.profiles.get(record.partition, key)))

    async def _consent(self, record: SourceRecord) -> None:
        """An opt-in or opt-out becomes part of the (shop, user) profile; a bad one is a dead
        letter with its reason."""

        def keep() -> bool:
            event = self.serdes[CONSENT].decode(record.value)
            validate_change(event)
            key = profile_key(event["shop_id"], event["user_id"])
            self.profiles.put(record.partition, key, profile_with_consent(
                self.profiles.get(record.partition, key), event, record.partition))
            return True

        if await self.dead.attempt(record, STAGE, keep):
            metrics.EVENTS_ROUTED.labels(CONSENT).inc()

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
        metrics.labelled(metrics.EVENTS_ROUTED, record.topic).inc()

    def _encode(self, commands: list[EmailCommand]) -> list[tuple[EmailCommand, bytes]]:
        return [(c, self.commands[c.priority.topic].encode(c)) for c in commands]

    def _publish_commands(self, commands: list[EmailCommand]) -> None:
        self._publish(self._encode(commands))

    def _publish(self, encoded: list[tuple[EmailCommand, bytes]]) -> None:
        for command, payload in encoded:
            key = recipient_key(command.recipient, self.key_secret).encode()
            self.producer.produce(command.priority.topic, key, payload)
            metrics.labelled(metrics.COMMANDS, command.priority.value,
                             command.email_type.value).inc()

    def _broadcast(self, record: SourceRecord) -> None:
        """One copy per partition, marked with this app id: campaign.fanout is shared, and a
        second app reading the same domain topics (another consumer group: a blue/green
        deploy, a benchmark) must not make this app send the campaign twice."""
        for partition in range(self.partitions):
            self.producer.produce(CAMPAIGN_FANOUT, record.key, record.value,
                                  [(APP_HEADER, self.app_id)], partition=partition,
                                  timestamp=record.timestamp)

    async def _launch(self, record: SourceRecord) -> None:
        """This partition's copy of a launch becomes its campaign run."""
        if not self._own_copy(record):
            return
        published = record.timestamp if record.timestamp > 0 else int(time.time() * 1000)

        def register() -> bool:
            event = self.serdes[CAMPAIGN_FANOUT].decode(record.value)
            self.campaigns.launch(record, event, published)
            return True

        if await self.dead.attempt(record, STAGE, register):
            metrics.EVENTS_ROUTED.labels(CAMPAIGN_FANOUT).inc()

    async def _command(self, record: SourceRecord) -> None:
        """A command as published is copied to every partition; this app's copies act."""
        if origin(record) is None:  # checked once here: a bad one is one dead letter

            def copy() -> bool:
                validate_control(self.serdes[CAMPAIGN_CONTROL].decode(record.value))
                self.campaigns.broadcast(record)
                return True

            await self.dead.attempt(record, STAGE, copy)
            return
        if not self._own_copy(record):
            return

        def act() -> bool:
            self.campaigns.command(record, self.serdes[CAMPAIGN_CONTROL].decode(record.value))
            return True

        if await self.dead.attempt(record, STAGE, act):
            metrics.EVENTS_ROUTED.labels(CAMPAIGN_CONTROL).inc()

    async def _erase(self, record: SourceRecord) -> None:
        """A person's profile at the shop is deleted (local row overwritten, tombstone in
        the changelog) and their delivery events leave OpenSearch; the receipt says so."""

        async def erase() -> bool:
            request = self.serdes[ERASURE].decode(record.value)
            validate_request(request)
            shop_id, user_id = request["shop_id"], request.get("user_id")
            deleted = 0
            if user_id:
                for key in (profile_key(shop_id, user_id), user_id):
                    held = self.profiles.get(record.partition, key)
                    if held is not None and held.get("shop_id") == shop_id:
                        deleted += self.profiles.delete(record.partition, key)
            analytics = await asyncio.get_running_loop().run_in_executor(
                None, delete_events, self.settings,
                analytics_query(shop_id, recipient_key(request["email"], self.key_secret)))
            done = receipt(request, deleted, analytics, self.settings.erasure_bound_s,
                           dt.datetime.now(dt.UTC))
            self.producer.produce(ERASURES, request["event_id"].encode(),
                                  self.receipts.encode(done))
            log.info("erasure %s at %s: %d profile(s), %d analytics document(s) deleted",
                     request["event_id"], shop_id, deleted, analytics)
            return True

        if await self.dead.attempt(record, STAGE, erase):
            metrics.EVENTS_ROUTED.labels(ERASURE).inc()

    def _own_copy(self, record: SourceRecord) -> bool:
        found = origin(record)
        return found is None or found == self.app_id  # unmarked: older copies


class _PartitionView:
    """``lookup``'s table: the profiles of one partition."""

    def __init__(self, store: ChangelogStore, partition: int) -> None:
        self.store, self.partition = store, partition

    def get(self, key: str) -> Any:
        return self.store.get(self.partition, key)
