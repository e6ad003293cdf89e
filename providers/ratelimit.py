"""Token bucket per provider; a 429 with Retry-After empties it until then (injectable clock)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = -1.0
    updated: float = -1.0
    blocked_until: float = 0.0

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.burst
        if self.updated < 0:
            self.updated = self.clock()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now

    def wait_time(self, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are available (0 when they are)."""
        now = self.clock()
        if now < self.blocked_until:
            return self.blocked_until - now
        self._refill(now)
        if self.tokens >= cost:
            return 0.0
        return (cost - self.tokens) / self.rate_per_s

    def take(self, cost: float = 1.0) -> bool:
        """Spend ``cost`` tokens if available now."""
        if self.wait_time(cost) > 0:
            return False
        self.tokens -= cost
        return True

    def throttled(self, retry_after_s: float | None) -> None:
        """The provider said 429: no tokens until Retry-After (default one second)."""
        now = self.clock()
        self.blocked_until = max(self.blocked_until, now + (retry_after_s or 1.0))
        self.tokens = 0.0
        self.updated = now
