"""An alert that acts: a provider whose failure-rate alert is raised (``email.alerts``, from
the anomaly detector) is taken out of every chain in this process until the alert clears,
as long as another provider is left (providers/chain.py). Its circuit breaker reacts to a
few failures in a row within seconds; this reacts to a provider that fails a tenth of its
sends for an hour without ever failing enough in a row to open the breaker."""

from __future__ import annotations

import json
import time
from typing import Any

from streams.changelog_store import SuppressionView
from streams.topics import ALERTS

RULE = "provider_failure_rate"
REFRESH_S = 1.0  # the chains ask per email; the follower is read at most this often


def _parse(value: bytes | None) -> Any:
    """An alert; anything else on the topic (not JSON) is no alert, and left alone."""
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


def _merge(_old: Any, alert: Any) -> Any:
    """Raised anomaly alerts stay; a cleared one (or any other record) leaves."""
    if isinstance(alert, dict) and alert.get("type") == "anomaly" and (
            alert.get("state") == "raised"):
        return alert
    return None


class ProviderQuarantine:
    def __init__(self, bootstrap: str) -> None:
        self.view = SuppressionView(bootstrap, ALERTS, _merge, _parse, label="alerts")
        self._names: frozenset[str] = frozenset()
        self._next = 0.0

    def start(self, timeout_s: float) -> None:
        self.view.start(timeout_s)
        self._refresh()

    def _refresh(self) -> None:
        self._names = frozenset(str(alert.get("key")) for alert in self.view.entries.values()
                                if alert.get("rule") == RULE)

    def names(self) -> frozenset[str]:
        """The providers out now (``ProviderChain.quarantined``)."""
        now = time.monotonic()
        if now >= self._next:
            self._next = now + REFRESH_S
            self.view.catch_up()
            self._refresh()
        return self._names

    def close(self) -> None:
        self.view.close()
