"""Anomaly detection on the delivery stream (processors/anomaly.py holds the rules).

Every sink process counts the delivery events it indexes, per batch and minute, and writes
those counts to ``email.anomaly_counts``, a topic of one partition; its one consumer in the
``<app id>-anomaly`` group (Kafka gives the partition to exactly one process, and to another
if that one dies) sums them over the window and raises and clears alerts on
``email.alerts``, then tells people through the configured channels (a generic JSON webhook,
a Slack-compatible one). On assignment it reads back the counts of the window before its
group's committed offset and the alerts still raised, so a restart neither forgets a window
nor raises an alert twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from confluent_kafka import Consumer, TopicPartition

from core.avro import registry
from core.kafka_config import client_config
from core.settings import Settings
from processors.anomaly import Partial, Rule, Windows, default_rules, evaluate, message
from processors.campaign_runs import campaign_of, control_event
from processors.operator_events import (
    ALERT_TOPIC,
    alert_event,
    operator_shop_of,
    operators,
    report_due,
)
from streams import daily_report
from streams.batch_io import BatchProducer
from streams.batch_loop import BatchLoop, LoopStage
from streams.partition_reader import read_partition
from streams.serde import serde
from streams.topics import ALERTS, ANOMALY_COUNTS, CAMPAIGN_CONTROL

if TYPE_CHECKING:
    from streams.batch_io import SourceRecord

log = logging.getLogger(__name__)
IDLE_CHECK_S = 30.0  # a window can empty (and its alert clear) while no mail flows


def rules_of(settings: Settings) -> list[Rule]:
    return default_rules(settings.alert_bounce_rate, settings.alert_complaint_rate,
                         settings.alert_failure_rate, settings.alert_min_sample)


class AnomalyDetector(LoopStage):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = rules_of(settings)
        self.windows = Windows(int(settings.alert_window_s * 1000))
        self.raised: dict[str, dict[str, Any]] = {}
        self.group = f"{settings.app_id}-anomaly"
        self.producer = BatchProducer(settings.kafka_bootstrap, **{"linger.ms": 0})
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None
        self._idle: asyncio.Task[None] | None = None
        self.alert_emails = operators(settings.alert_emails)
        self.ops_alerts = serde(settings, registry(), ALERT_TOPIC)
        self.controls = serde(settings, registry(), CAMPAIGN_CONTROL)
        self.shop = operator_shop_of(settings)
        self.report_sent: dt.date | None = None
        self.held: set[int] = set()  # the one process holding it sums, and sends the report
        self.loops = [BatchLoop(settings.kafka_bootstrap, self.group, [ANOMALY_COUNTS],
                                self.handle, take_max=500, on_assign=self._assigned,
                                on_revoke=lambda lost: self.held.difference_update(lost),
                                label="anomaly", startup_timeout_s=settings.startup_timeout_s)]

    def _assigned(self, partitions: list[int]) -> None:
        """In the consumer's thread, before any record: the window and the raised alerts."""
        self.held |= set(partitions)  # assignments may come as increments (cooperative)
        if not partitions:
            return
        bootstrap = self.settings.kafka_bootstrap
        reader = Consumer(client_config(bootstrap, **{"group.id": self.group,
                                                      "enable.auto.commit": False}))
        try:
            [committed] = reader.committed([TopicPartition(ANOMALY_COUNTS, 0)], timeout=30)
        finally:
            reader.close()
        windows = Windows(self.windows.window_ms)
        if committed.offset >= 0:  # what the previous owner summed; the loop reads the rest
            since = int((time.time() - self.settings.alert_window_s) * 1000)
            for value in read_partition(bootstrap, ANOMALY_COUNTS, since, committed.offset):
                windows.add(json.loads(value))
        raised: dict[str, dict[str, Any]] = {}
        for value in read_partition(bootstrap, ALERTS, None, None):
            try:
                alert = json.loads(value)
            except ValueError:
                continue
            if isinstance(alert, dict) and alert.get("type") == "anomaly":
                if alert.get("state") == "raised":
                    raised[alert["id"]] = alert
                else:
                    raised.pop(alert.get("id"), None)
        self.windows, self.raised = windows, raised  # whole, for the event loop's checks
        log.info("anomaly: window restored, %d alert(s) raised", len(raised))

    async def prepare(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._idle = asyncio.create_task(self._check_when_idle())

    async def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._http is not None:
            await self._http.close()
        self.producer.close()

    async def handle(self, batch: list[SourceRecord]) -> None:
        async with self._lock:
            for record in batch:
                try:
                    partial: Partial = json.loads(record.value or b"{}")
                    self.windows.add(partial)
                except (ValueError, TypeError, AttributeError):
                    log.warning("anomaly: unreadable counts at offset %d skipped", record.offset)
            await self._decide()

    async def _check_when_idle(self) -> None:
        while True:
            await asyncio.sleep(IDLE_CHECK_S)
            if self.ready:
                async with self._lock:
                    await self._decide()
                await self._report_if_due()

    async def _report_if_due(self) -> None:
        """The daily report, from the one process that holds the detector's partition."""
        day = report_due(dt.datetime.now(dt.UTC), self.settings.daily_report_at,
                         self.report_sent)
        if day is None or not self.held or not self.settings.report_emails.strip():
            return
        loop = asyncio.get_running_loop()
        try:
            report = await loop.run_in_executor(None, daily_report.gather, self.settings, day)
            await loop.run_in_executor(None, daily_report.publish, self.settings, report)
        except Exception as err:  # noqa: BLE001 - tried again at the next check
            log.error("daily report of %s not sent yet (%s: %s)", day, type(err).__name__,
                      str(err)[:200])
            return
        self.report_sent = day
        log.info("daily report of %s sent to %d operator(s)", day,
                 len(operators(self.settings.report_emails)))

    async def _decide(self) -> None:
        alerts = evaluate(self.rules, self.windows, self.raised, int(time.time() * 1000))
        if not alerts:
            return
        for alert in alerts:
            self.producer.produce(ALERTS, alert["id"].encode(), json.dumps(alert).encode())
            if self.alert_emails:  # by email: through flowmail, as critical mail
                self.producer.produce(ALERT_TOPIC, alert["id"].encode(), self.ops_alerts.encode(
                    alert_event(self.settings.app_id, alert, message(alert), self.alert_emails,
                                self.shop), check=True))
            self._pause_if_campaign(alert)
        await self.producer.flush()  # on email.alerts before anyone is told
        for alert in alerts:
            log.warning("anomaly %s", message(alert))
            await self._tell(alert)

    def _pause_if_campaign(self, alert: dict[str, Any]) -> None:
        """A rule that acts: a campaign bouncing or drawing complaints past its threshold is
        paused (the router hands out no more of it) until an operator resumes it."""
        found = campaign_of(alert) if self.settings.alert_pause_campaigns else None
        if found is None:
            return
        shop_id, campaign_id = found
        command = control_event(shop_id, campaign_id, "pause",
                                f"alert {alert['id']}: {message(alert)}",
                                event_id=f"pause-{alert['id']}-{alert.get('at')}")
        self.producer.produce(CAMPAIGN_CONTROL, campaign_id.encode(),
                              self.controls.encode(command))
        log.warning("campaign %s of shop %s paused by alert %s", campaign_id, shop_id,
                    alert["id"])

    async def _tell(self, alert: dict[str, Any]) -> None:
        """The channels; a channel that fails is logged (the alert is on email.alerts)."""
        assert self._http is not None
        sends = []
        if self.settings.alert_webhook_url:
            sends.append((self.settings.alert_webhook_url, alert))
        if self.settings.alert_slack_url:
            sends.append((self.settings.alert_slack_url, {"text": f"flowmail: {message(alert)}"}))
        for url, body in sends:
            try:
                async with self._http.post(url, json=body) as answer:
                    if answer.status >= 300:
                        log.error("alert channel answered %d", answer.status)
            except (aiohttp.ClientError, TimeoutError) as err:
                log.error("alert channel unreachable (%s)", type(err).__name__)
