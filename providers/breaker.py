"""A circuit breaker per provider: closed, open, half-open with one probe. Injectable clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"        # calls flow; failures are counted
    OPEN = "open"            # calls are refused until the cool-down ends
    HALF_OPEN = "half_open"  # one probe call decides: success closes, failure re-opens


@dataclass
class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive transient failures."""

    failure_threshold: int = 5
    cooldown_s: float = 30.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = field(default=False)

    def allow(self) -> bool:
        """May a call go through now? In half-open state only one probe at a time."""
        if self.state is BreakerState.OPEN:
            if self.clock() - self.opened_at < self.cooldown_s:
                return False
            self.state = BreakerState.HALF_OPEN
        if self.state is BreakerState.HALF_OPEN:
            if self.probing:
                return False
            self.probing = True
        return True

    def record_success(self) -> None:
        self.state, self.failures, self.probing = BreakerState.CLOSED, 0, False

    def record_failure(self) -> None:
        self.probing = False
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.state, self.opened_at = BreakerState.OPEN, self.clock()
