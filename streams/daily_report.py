"""The daily report's I/O: its figures from OpenSearch and ``email.alerts``, and the
``ops.daily_report`` event that mails it to the operators through flowmail.

The worker process that holds the anomaly detector (one partition: one process) sends it once
a day at FLOWMAIL_DAILY_REPORT_AT (UTC); ``flowmail report daily`` makes the same report by
hand. Sending it twice sends nobody a second mail (processors/operator_events.py).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from confluent_kafka import Producer

from core.avro import registry
from core.kafka_config import producer_config
from core.opensearch_client import search_events
from core.settings import Settings, name_values
from processors.daily_report import day_bounds, figures, query
from processors.operator_events import REPORT_TOPIC, operator_shop_of, operators, report_event
from providers.registry import PROVIDERS
from streams.partition_reader import read_partition
from streams.serde import serde
from streams.topics import ALERTS


def costs(settings: Settings) -> dict[str, float]:
    """Price per 1,000 emails by provider: what each declares, unless settings override."""
    return {**{name: kind.cost_per_1k for name, kind in PROVIDERS.items()},
            **name_values(settings.provider_costs, "provider_costs")}


def day_alerts(settings: Settings, day: dt.date) -> list[dict[str, Any]]:
    since, until = day_bounds(day)
    found = []
    for value in read_partition(settings.kafka_bootstrap, ALERTS, since, None):
        try:
            alert = json.loads(value)
        except ValueError:
            continue
        if (isinstance(alert, dict) and alert.get("type") == "anomaly"
                and since <= int(alert.get("at") or 0) < until):
            found.append(alert)
    return found


def gather(settings: Settings, day: dt.date) -> dict[str, Any]:
    """The figures of ``day``; raises ``requests.RequestException`` when OpenSearch is not
    reachable (the caller tries again later)."""
    answer = search_events(settings, query(day), timeout=60)
    answer.raise_for_status()
    return figures(day, answer.json(), day_alerts(settings, day), costs(settings))


def publish(settings: Settings, report: dict[str, Any], to: list[str] | None = None,
            now: dt.datetime | None = None) -> str:
    """The ``ops.daily_report`` event, acknowledged by Kafka; returns its event id."""
    addresses = to if to is not None else operators(settings.report_emails)
    if not addresses:
        raise ValueError("nobody to send the report to: set FLOWMAIL_REPORT_EMAILS")
    event = report_event(settings.app_id, report, addresses, operator_shop_of(settings),
                         now or dt.datetime.now(dt.UTC))
    producer = Producer(producer_config(settings.kafka_bootstrap))
    failures: list[str] = []
    producer.produce(REPORT_TOPIC, key=report["date"].encode(),
                     value=serde(settings, registry(), REPORT_TOPIC).encode(event, check=True),
                     on_delivery=lambda err, _msg: failures.append(str(err)) if err else None)
    if producer.flush(30) or failures:
        raise RuntimeError(f"the report was not stored: {failures or 'timeout'}")
    return str(event["event_id"])
