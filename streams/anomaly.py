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
import json
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from core.kafka_config import client_config
from core.settings import Settings
from processors.anomaly import Partial, Rule, Windows, default_rules, evaluate, message
from streams.batch_io import BatchProducer
from streams.batch_loop import BatchLoop, LoopStage
from streams.topics import ALERTS, ANOMALY_COUNTS

if TYPE_CHECKING:
    from streams.batch_io import SourceRecord

log = logging.getLogger(__name__)
IDLE_CHECK_S = 30.0  # a window can empty (and its alert clear) while no mail flows


def rules_of(settings: Settings) -> list[Rule]:
    return default_rules(settings.alert_bounce_rate, settings.alert_complaint_rate,
                         settings.alert_failure_rate, settings.alert_min_sample)


def _read(bootstrap: str, topic: str, since_ms: int | None, until: int | None
          ) -> list[bytes]:
    """Values of the one-partition ``topic`` from ``since_ms`` (None: the start) up to offset
    ``until`` (None: the end)."""
    reader = Consumer(client_config(bootstrap, **{"group.id": f"{topic}-reader",
                                                  "enable.auto.commit": False}))
    try:
        partition = TopicPartition(topic, 0, since_ms if since_ms is not None else 0)
        start = (reader.offsets_for_times([partition], timeout=30)[0].offset
                 if since_ms is not None else 0)
        low, high = reader.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)
        end = high if until is None else min(until, high)
        start = high if start == OFFSET_END or start < 0 else max(start, low)
        if start >= end:
            return []
        reader.assign([TopicPartition(topic, 0, start)])
        values: list[bytes] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message_ = reader.poll(1.0)
            if message_ is None or message_.error():
                continue
            if message_.offset() >= end:
                break
            values.append(message_.value() or b"")
            if message_.offset() + 1 >= end:
                break
        return values
    finally:
        reader.close()


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
        self.loops = [BatchLoop(settings.kafka_bootstrap, self.group, [ANOMALY_COUNTS],
                                self.handle, take_max=500, on_assign=self._assigned,
                                label="anomaly", startup_timeout_s=settings.startup_timeout_s)]

    def _assigned(self, partitions: list[int]) -> None:
        """In the consumer's thread, before any record: the window and the raised alerts."""
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
            for value in _read(bootstrap, ANOMALY_COUNTS, since, committed.offset):
                windows.add(json.loads(value))
        raised: dict[str, dict[str, Any]] = {}
        for value in _read(bootstrap, ALERTS, None, None):
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

    async def _decide(self) -> None:
        alerts = evaluate(self.rules, self.windows, self.raised, int(time.time() * 1000))
        if not alerts:
            return
        for alert in alerts:
            self.producer.produce(ALERTS, alert["id"].encode(), json.dumps(alert).encode())
        await self.producer.flush()  # on email.alerts before anyone is told
        for alert in alerts:
            log.warning("anomaly %s", message(alert))
            await self._tell(alert)

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
