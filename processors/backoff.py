"""Retry timing: exponential backoff with full jitter, capped, honouring Retry-After."""

from __future__ import annotations

import random


def retry_delay_s(attempt: int, base_s: float = 2.0, cap_s: float = 900.0,
                  retry_after_s: float | None = None, rng: random.Random | None = None) -> float:
    """Delay before attempt ``attempt + 1``; ``attempt`` starts at 1 for the first try.

    Full jitter (uniform in [0, base * 2^(attempt-1)]) spreads retries of a failed batch;
    a provider's Retry-After is a floor.
    """
    ceiling = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    delay = (rng or random).uniform(0, ceiling)
    return max(delay, retry_after_s or 0.0)
