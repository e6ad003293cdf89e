"""Prometheus metrics of the worker, served at ``/metrics`` by the Faust web server."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

EVENTS_ROUTED = Counter("flowmail_events_routed_total", "Domain events turned into commands",
                        ["topic"])
COMMANDS = Counter("flowmail_commands_total", "Email commands emitted", ["priority", "email_type"])
DEAD_LETTERS = Counter("flowmail_dead_letters_total", "Records sent to email.dlq",
                       ["stage", "reason"])
DELIVERIES = Counter("flowmail_deliveries_total", "Delivery outcomes",
                     ["priority", "status", "provider"])
SEND_LATENCY = Histogram("flowmail_end_to_end_seconds",
                         "Source event publish to provider accept", ["priority"],
                         buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300))
AMBIGUOUS = Counter("flowmail_ambiguous_total",
                    "Commands of a batch call whose outcome a crash left unknown (not resent)",
                    ["priority"])
DEAD_LETTER_RETRIES = Counter("flowmail_dead_letter_retries_total",
                              "Minimal dead letters Kafka refused and that are being retried")
ATTACHMENTS_MISSING = Counter("flowmail_attachments_missing_total",
                              "Emails sent without an optional PDF that could not be made",
                              ["email_type"])
INDEXED = Counter("flowmail_delivery_events_indexed_total", "Delivery events indexed")
LOCALE_FALLBACKS = Counter("flowmail_locale_fallbacks_total",
                           "Emails rendered in English because their locale is unsupported",
                           ["locale"])
BREAKER_OPEN = Gauge("flowmail_provider_breaker_open",
                     "1 while a provider's circuit breaker is open or half-open", ["provider"])
LOOP_LAG = Histogram("flowmail_event_loop_lag_seconds",
                     "How late a 50 ms timer fires: every agent shares one event loop, so this "
                     "is the wait any email has at each step", buckets=(
                         0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
CONSUMER_LAG = Gauge("flowmail_consumer_lag", "Records not yet read, per partition this "
                     "process holds (end offset - position; refreshed every few seconds)",
                     ["group", "topic", "partition"])
BATCH_SIZE = Histogram("flowmail_batch_records", "Records per batch a batch stage took",
                       ["group"], buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000))


async def measure_loop_lag() -> None:
    """How late the event loop wakes a 50 ms sleep: the time a ready record waits for it."""
    loop = asyncio.get_running_loop()
    while True:
        began = loop.time()
        await asyncio.sleep(0.05)
        LOOP_LAG.observe(max(0.0, loop.time() - began - 0.05))


@lru_cache(maxsize=4096)
def labelled(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, looked up once: the hot path counts every email, and
    ``labels`` (a lock, a tuple of strings, a lookup) was a fiftieth of a worker's CPU.
    Only for metrics whose children are never removed."""
    return metric.labels(*values)
