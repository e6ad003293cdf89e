"""Anomaly rules over delivery events: counted per batch, summed over a sliding window, raised
once and cleared once.

A rule is a rate (bad statuses over base statuses) per key of one dimension (provider, shop,
recipient domain, campaign) over the last ``window_ms``. It is raised when the rate passes
its threshold with at least ``min_sample`` emails in the base (one bounce in two emails is
no alarm), and cleared when the rate falls to ``clear_ratio`` of the threshold or the
window holds no mail of that key any more: in between, nothing is said again.

Counting happens where the events are already decoded (the sink), per batch and per minute;
the sums and the decision happen in one place (streams/anomaly.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from processors.commands import DeliveryEvent

MINUTE_MS = 60_000


@dataclass(frozen=True)
class Rule:
    name: str
    dimension: str             # a DeliveryEvent attribute: provider, shop_id, campaign, ...
    bad: frozenset[str]
    base: frozenset[str]
    threshold: float
    min_sample: int


def default_rules(bounce_rate: float = 0.05, complaint_rate: float = 0.001,
                  failure_rate: float = 0.10, min_sample: int = 100) -> list[Rule]:
    """The case study's rules (bounce > 5 %, provider failures > 10 %) and the complaint rate
    mailbox providers hold senders to (0.1 %, which needs ten times the sample)."""
    sent = frozenset({"sent"})
    rules = [Rule("bounce_rate", dimension, frozenset({"bounced"}), sent, bounce_rate,
                  min_sample)
             for dimension in ("provider", "shop_id", "recipient_domain", "campaign")]
    rules += [Rule("complaint_rate", dimension, frozenset({"complained"}), sent,
                   complaint_rate, min_sample * 10) for dimension in ("shop_id", "campaign")]
    rules.append(Rule("provider_failure_rate", "provider", frozenset({"failed", "deferred"}),
                      frozenset({"sent", "failed", "deferred"}), failure_rate, min_sample))
    return rules


def watched(rules: Iterable[Rule]) -> tuple[set[str], set[str]]:
    """(dimensions, statuses) the rules need counted."""
    rules = list(rules)
    return ({r.dimension for r in rules}, {s for r in rules for s in r.bad | r.base})


Partial = dict[str, dict[str, dict[str, dict[str, int]]]]  # dim -> key -> minute -> status


def count(events: Iterable[DeliveryEvent], rules: Iterable[Rule]) -> Partial:
    """One batch's counts, per dimension, key, minute and status (JSON-ready)."""
    dimensions, statuses = watched(rules)
    found: Partial = {}
    for event in events:
        status = event.status.value
        if status not in statuses:
            continue
        minute = str(event.occurred_at // MINUTE_MS)
        for dimension in dimensions:
            key = getattr(event, dimension, None)
            if not key:
                continue
            per_status = found.setdefault(dimension, {}).setdefault(str(key), {}).setdefault(
                minute, {})
            per_status[status] = per_status.get(status, 0) + 1
    return found


class Windows:
    """The counts of the last ``window_ms``, per dimension and key, by minute."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._minutes: dict[tuple[str, str], dict[int, dict[str, int]]] = defaultdict(dict)

    def add(self, partial: Partial) -> None:
        for dimension, keys in partial.items():
            for key, minutes in keys.items():
                held = self._minutes[(dimension, key)]
                for minute, statuses in minutes.items():
                    into = held.setdefault(int(minute), {})
                    for status, number in statuses.items():
                        into[status] = into.get(status, 0) + int(number)

    def evict(self, now_ms: int) -> None:
        oldest = (now_ms - self.window_ms) // MINUTE_MS
        for name in list(self._minutes):
            held = self._minutes[name]
            for minute in [m for m in held if m < oldest]:
                del held[minute]
            if not held:
                del self._minutes[name]

    def keys(self, dimension: str) -> list[str]:
        return [key for (dim, key) in self._minutes if dim == dimension]

    def totals(self, dimension: str, key: str) -> dict[str, int]:
        summed: dict[str, int] = {}
        for statuses in self._minutes.get((dimension, key), {}).values():
            for status, number in statuses.items():
                summed[status] = summed.get(status, 0) + number
        return summed


def evaluate(rules: Iterable[Rule], windows: Windows, raised: dict[str, dict[str, Any]],
             now_ms: int, clear_ratio: float = 0.8) -> list[dict[str, Any]]:
    """Alerts to publish now; ``raised`` (alert id -> the raising alert) is updated."""
    windows.evict(now_ms)
    alerts = []
    for rule in rules:
        seen = set()
        for key in windows.keys(rule.dimension):
            alert_id = f"{rule.name}/{rule.dimension}/{key}"
            seen.add(alert_id)
            totals = windows.totals(rule.dimension, key)
            base = sum(totals.get(s, 0) for s in rule.base)
            bad = sum(totals.get(s, 0) for s in rule.bad)
            rate = bad / base if base else 0.0
            facts = {"id": alert_id, "type": "anomaly", "rule": rule.name,
                     "dimension": rule.dimension, "key": key, "rate": round(rate, 5),
                     "threshold": rule.threshold, "sample": base, "at": now_ms,
                     "window_s": windows.window_ms // 1000}
            if alert_id not in raised and base >= rule.min_sample and rate > rule.threshold:
                raised[alert_id] = {**facts, "state": "raised"}
                alerts.append(raised[alert_id])
            elif alert_id in raised and base and rate <= rule.threshold * clear_ratio:
                del raised[alert_id]
                alerts.append({**facts, "state": "cleared"})
        for alert_id in [a for a in raised if a.startswith(f"{rule.name}/{rule.dimension}/")
                         and a not in seen]:  # no mail of that key left in the window
            facts = raised.pop(alert_id)
            alerts.append({**facts, "state": "cleared", "rate": None, "sample": 0,
                           "at": now_ms})
    return alerts


def message(alert: dict[str, Any]) -> str:
    """One line for people (Slack, logs)."""
    what = f"{alert['rule'].replace('_', ' ')} of {alert['dimension'].replace('_id', '')} " \
           f"{alert['key']}"
    if alert["state"] == "raised":
        return (f"RAISED: {what} is {alert['rate']:.2%} over {alert['sample']} emails in "
                f"{alert['window_s'] // 60} min (threshold {alert['threshold']:.2%})")
    if alert["rate"] is None:
        return f"CLEARED: {what}: no more mail of it in the window"
    return f"CLEARED: {what} is back to {alert['rate']:.2%} over {alert['sample']} emails"
