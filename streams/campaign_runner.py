"""The campaign runs of the partitions a router holds: schedule, throttle, pause/resume/cancel
and the A/B test, advanced a step at each turn of the router's loop.

A launch copied to partition P (``campaign.fanout``) becomes P's run in the app's runs changelog
(a ``ChangelogStore``: restored when P is assigned, written through with every step), so a
campaign scheduled for tomorrow holds no thread, no timer and no uncommitted record: the
fan-out record is committed at once, and whoever holds P when ``send_at`` comes starts it.
Each step walks at most ``STEP_PROFILES`` profiles from the run's cursor and hands out what
the throttle allows; a crash repeats at most one step, and the ledgers skip what was sent.

Commands (``campaign.control``) reach every partition the way launches do: the holder of the
partition a command was published to copies it, marked with this app's id, to every
partition. The holder of partition 0 decides A/B tests for every partition: when all runs
of a test have handed out their test share and the window has passed, it reads the
variants' results from OpenSearch and publishes the ``winner`` command.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import requests
from confluent_kafka import KafkaException

from core.opensearch_client import search_events
from core.settings import Settings
from core.vocab import Priority
from processors import campaign_runs as runs
from processors import preferences
from processors.campaigns import category_of, choose_variant, matches
from processors.commands import EmailCommand
from processors.deliverability import Row, variant_rows, variants_query
from processors.routing import fan_out_campaign
from streams.batch_io import BatchProducer, SourceRecord
from streams.batch_sender import sender_group
from streams.changelog_store import ChangelogStore, read_to_end
from streams.groups import Backlog
from streams.serde import Serde
from streams.topics import CAMPAIGN_CONTROL, campaign_runs_changelog

log = logging.getLogger(__name__)

APP_HEADER = "flowmail-app-id"
# profiles a run walks per step. Commands are read between steps, and a step's commands
# reach the senders when it ends: 8,192 took 400 ms to hand out before the senders saw the
# first (docs/performance.md, fourteenth session)
STEP_PROFILES = 1024
COUNT_YIELD = 4096       # profiles counted between two turns of the event loop
DECIDE_EVERY_S = 2.0     # how often a waiting A/B test's runs are read
BACKLOG_EVERY_S = 1.0    # how often the marketing senders' backlog is asked

Publish = Callable[[list[EmailCommand]], None]


def variant_results(settings: Settings, shop_id: str, campaign_id: str, since_ms: int
                    ) -> dict[str, Row]:
    """Each variant's outcomes since the campaign began (the A/B decision, the status);
    raises ``requests.RequestException`` when OpenSearch does not answer."""
    answer = search_events(settings, variants_query(shop_id, campaign_id, since_ms))
    answer.raise_for_status()
    return variant_rows(answer.json())


def origin(record: SourceRecord) -> bytes | None:
    return next((value for name, value in record.headers or () if name == APP_HEADER), None)


class CampaignRunner:
    def __init__(self, settings: Settings, producer: BatchProducer, profiles: ChangelogStore,
                 launches: Serde, controls: Serde, publish: Publish) -> None:
        self.settings = settings
        self.producer, self.profiles = producer, profiles
        self.launches, self.controls, self.publish = launches, controls, publish
        self.partitions = settings.partitions_domain
        self.app_id = settings.app_id.encode()
        self.unsubscribe_secret = settings.unsubscribe_secret.encode()
        self.key_secret = settings.pseudonym_secret.encode()
        self.runs_topic = campaign_runs_changelog(settings.app_id)
        self.store = ChangelogStore(settings.kafka_bootstrap, self.runs_topic, producer,
                                    settings.state_dir)
        self.active: dict[str, dict[str, Any]] = {}   # run key -> run, of held partitions
        self._events: dict[str, dict[str, Any]] = {}  # launch event id -> decoded launch
        self._tokens: dict[str, tuple[float, float]] = {}  # run key -> (tokens, when)
        self._decide_due: dict[str, float] = {}
        self.lead = settings.campaign_lead
        self.backlog = Backlog(settings.kafka_bootstrap,
                               sender_group(settings, Priority.MARKETING), Priority.MARKETING.topic)
        self._waiting, self._waiting_due = 0, 0.0

    # -- partitions ------------------------------------------------------------------------
    def restore(self, partitions: list[int], timeout_s: float) -> None:
        self.store.restore(partitions, timeout_s)
        for partition in partitions:
            for run in self.store.values(partition):
                if run.get("phase") in runs.ACTIVE:
                    self.active[self._key(run)] = run

    def drop(self, partitions: list[int]) -> None:
        gone = set(partitions)
        for key in [k for k, run in self.active.items() if run["partition"] in gone]:
            del self.active[key]
        self.store.drop(partitions)

    def close(self) -> None:
        self.store.close()
        self.backlog.close()

    @staticmethod
    def _key(run: dict[str, Any]) -> str:
        return runs.run_key(run["shop_id"], run["campaign_id"], run["partition"])

    def _save(self, run: dict[str, Any]) -> None:
        key = self._key(run)
        self.store.put(run["partition"], key, run)
        if run["phase"] in runs.ACTIVE:
            self.active[key] = run
        else:
            self.active.pop(key, None)
            self._tokens.pop(key, None)

    # -- records ---------------------------------------------------------------------------
    def broadcast(self, record: SourceRecord) -> None:
        """A command as published: one marked copy per partition (this app's)."""
        for partition in range(self.partitions):
            self.producer.produce(CAMPAIGN_CONTROL, record.key, record.value,
                                  [(APP_HEADER, self.app_id)], partition=partition,
                                  timestamp=record.timestamp)

    def launch(self, record: SourceRecord, event: dict[str, Any], published: int) -> None:
        """A launch's copy for this partition: its run, unless this launch is already here
        (the copy read again after a restart must not start the run over)."""
        now = int(time.time() * 1000)
        key = runs.run_key(event["shop"]["shop_id"], event["campaign_id"], record.partition)
        earlier = self.store.get(record.partition, key)
        if earlier and earlier.get("event_id") == event["event_id"]:
            return
        if earlier and earlier.get("phase") in runs.ACTIVE:
            log.warning("campaign %s relaunched (a new event) on partition %s: the earlier "
                        "run stops", event["campaign_id"], record.partition)
        payload = base64.b64encode(record.value or b"").decode()
        self._save(runs.adopt(runs.new_run(event, record.partition, payload, published, now),
                              earlier))

    def command(self, record: SourceRecord, event: dict[str, Any]) -> None:
        runs.validate_control(event)
        now = int(time.time() * 1000)
        key = runs.run_key(event["shop_id"], event["campaign_id"], record.partition)
        run = self.store.get(record.partition, key) or runs.placeholder(
            event["shop_id"], event["campaign_id"], record.partition, now)
        decision = json.loads(event["figures_json"]) if event.get("figures_json") else None
        after = runs.apply_control(run, event["action"], now, event.get("variant_id"),
                                   decision)
        if after != run or run.get("phase") == "pending":
            self._save(after)
            log.info("campaign %s of shop %s, partition %s: %s -> %s%s", event["campaign_id"],
                     event["shop_id"], record.partition, event["action"], after["phase"],
                     " (paused)" if after.get("paused") else "")

    # -- steps -----------------------------------------------------------------------------
    async def step(self, wait_turn: Callable[[], Any]) -> bool:
        """Advance every held run by at most one step. True when a run stopped at the
        step's bound with more to hand out now (neither throttled nor ahead of the
        senders): the router then steps again without waiting for events."""
        if not self.active:
            return False
        now = int(time.time() * 1000)
        more = False
        behind: bool | None = None  # asked only when a run has recipients to hand out
        for key, run in list(self.active.items()):
            if key not in self.active:
                continue
            if runs.due(run, now):
                run = runs.start(run, await self._count(run), now)
                self._save(run)
                log.info("campaign %s of shop %s started on partition %s: %s recipients",
                         run["campaign_id"], run["shop_id"], run["partition"], run["targeted"])
            if runs.may_hand_out(run):
                if behind is None:
                    behind = await self._senders_behind()
                if not behind:
                    await wait_turn()
                    more = self._hand_out(key, run, now) or more
            elif run["phase"] == "waiting" and run["partition"] == 0:
                await self._maybe_decide(run)
        await self.producer.flush()
        return more

    async def _senders_behind(self) -> bool:
        """More than FLOWMAIL_CAMPAIGN_LEAD marketing commands wait for the senders: hand out
        nothing now. What is handed out is what a pause or a cancel can no longer hold back,
        so this bounds it (and the commands waiting in the broker) for unthrottled
        campaigns too."""
        if time.monotonic() >= self._waiting_due:
            self._waiting_due = time.monotonic() + BACKLOG_EVERY_S
            try:
                self._waiting = await asyncio.to_thread(self.backlog.count)
            except KafkaException as err:
                log.warning("marketing backlog unknown (%s): campaigns hand out as before", err)
        return self._waiting > self.lead

    def _event(self, run: dict[str, Any]) -> dict[str, Any]:
        event = self._events.get(run["event_id"])
        if event is None:
            event = self.launches.decode(base64.b64decode(run["payload"]))
            if len(self._events) > 64:
                self._events.clear()
            self._events[run["event_id"]] = event
        return event

    async def _count(self, run: dict[str, Any]) -> int:
        event, partition, count = self._event(run), run["partition"], 0
        for index, profile in enumerate(self.profiles.values(partition)):
            if (profile and profile.get("partition", partition) == partition
                    and matches(run["shop_id"], event["segment"], profile, category_of(event))):
                count += 1
            if index % COUNT_YIELD == COUNT_YIELD - 1:
                await asyncio.sleep(0)
        return count

    def _allowance(self, key: str, run: dict[str, Any]) -> int | None:
        rate = runs.per_second(run, self.partitions)
        if rate is None:
            return None
        now = time.monotonic()
        tokens, when = self._tokens.get(key, (0.0, now))
        tokens = runs.refill(tokens, rate, now - when)
        self._tokens[key] = (tokens, now)
        return int(tokens)

    def _hand_out(self, key: str, run: dict[str, Any], now: int) -> bool:
        """One step of a run; True when it stopped at STEP_PROFILES with more to walk."""
        allowed = self._allowance(key, run)
        if allowed == 0:
            return False
        event, partition = self._event(run), run["partition"]
        chosen, cursor, walked, finished, bounded = [], run["cursor"], 0, True, False
        for profile_key, profile in self.profiles.items(partition, run["cursor"]):
            if (allowed is not None and len(chosen) >= allowed) or walked >= STEP_PROFILES:
                finished, bounded = False, walked >= STEP_PROFILES
                break
            cursor, walked = profile_key, walked + 1
            if (profile and profile.get("partition", partition) == partition
                    and matches(run["shop_id"], event["segment"], profile, category_of(event))
                    and runs.wanted(run, profile["user_id"])):
                chosen.append(profile)
        commands, skipped = fan_out_campaign(
            event, "campaign.launched", chosen, run["published"], now,
            self.unsubscribe_secret, self.key_secret, self._picker(run, event),
            preferences.Links(self.settings.tracking_base_url, self.unsubscribe_secret,
                              now // 1000 + self.settings.preferences_ttl_days * 86400))
        self.publish(commands)
        if allowed is not None:
            tokens, when = self._tokens[key]
            self._tokens[key] = (tokens - len(chosen), when)
        if skipped:
            log.warning("campaign %s on partition %s skipped %s stored profiles with invalid "
                        "addresses", run["campaign_id"], partition, skipped)
        run = {**run, "cursor": cursor, "queued": run["queued"] + len(commands),
               "skipped": run["skipped"] + skipped, "updated_at": now}
        if finished:
            run = runs.pass_done(run, now)
            log.info("campaign %s on partition %s: %s", run["campaign_id"], partition,
                     run["phase"])
        self._save(run)
        return bounded

    @staticmethod
    def _picker(run: dict[str, Any], event: dict[str, Any]) -> Callable[[Any], Any]:
        if run["phase"] == "rest":
            winner = next((v for v in event["variants"] if v["variant_id"] == run["winner"]),
                          event["variants"][0])
            return lambda _profile: winner
        return lambda profile: choose_variant(event["campaign_id"], profile["user_id"],
                                              event["variants"])

    # -- the A/B decision (partition 0's holder) -------------------------------------------
    async def _maybe_decide(self, run: dict[str, Any]) -> None:
        key = self._key(run)
        if run.get("paused") or time.monotonic() < self._decide_due.get(key, 0.0):
            return
        self._decide_due[key] = time.monotonic() + DECIDE_EVERY_S
        try:
            decision = await asyncio.to_thread(self._decision, run)
        except (requests.RequestException, TimeoutError, ValueError) as err:
            log.warning("A/B decision of campaign %s postponed: %s", run["campaign_id"], err)
            return
        if decision is None:
            return
        value = self.controls.encode(runs.control_event(
            run["shop_id"], run["campaign_id"], runs.WINNER, decision=decision))
        for partition in range(self.partitions):
            self.producer.produce(CAMPAIGN_CONTROL, run["campaign_id"].encode(), value,
                                  [(APP_HEADER, self.app_id)], partition=partition)
        self._decide_due[key] = time.monotonic() + 60.0  # until the winner comes back
        log.info("campaign %s of shop %s: variant %s wins (%s, %s)", run["campaign_id"],
                 run["shop_id"], decision["winner"], decision["reason"], decision["metric"])

    def _decision(self, run: dict[str, Any]) -> dict[str, Any] | None:
        """Blocking (a thread): every partition's run of the test, then the results."""
        found: list[dict[str, Any]] = []

        def keep(_partition: int, _key: bytes | None, value: bytes | None) -> None:
            if value is None:
                return
            other = json.loads(value)
            if (other.get("shop_id"), other.get("campaign_id"), other.get("event_id")) == (
                    run["shop_id"], run["campaign_id"], run["event_id"]):
                found[:] = [r for r in found if r["partition"] != other["partition"]] + [other]

        read_to_end(self.settings.kafka_bootstrap, self.runs_topic, range(self.partitions),
                    keep, timeout_s=30)
        now = int(time.time() * 1000)
        if not runs.ready_to_decide(found, self.partitions, now):
            return None
        since = min(r["started_at"] or r["start_at"] for r in found)
        rows = variant_results(self.settings, run["shop_id"], run["campaign_id"], since)
        results = {v: runs.VariantResult(v, row.sent, row.opened, row.clicked)
                   for v, row in rows.items()}
        event = self._event(run)
        return runs.decide([v["variant_id"] for v in event["variants"]], results,
                           run["ab"]["metric"], run["ab"].get("min_sample", 100))
