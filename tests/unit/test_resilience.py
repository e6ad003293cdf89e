"""Breaker, token bucket and backoff with a fake clock: no sleeps."""

import random

from processors.backoff import retry_delay_s
from providers.breaker import BreakerState, CircuitBreaker
from providers.ratelimit import TokenBucket


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_breaker_opens_after_threshold_and_probes_after_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow() and breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # one probe at a time
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED and breaker.allow() and breaker.allow()


def test_success_resets_the_failure_count():
    breaker = CircuitBreaker(failure_threshold=2, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_bucket_refills_at_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate_per_s=10, burst=2, clock=clock)
    assert bucket.take() and bucket.take() and not bucket.take()
    assert abs(bucket.wait_time() - 0.1) < 1e-9
    clock.now += 0.1
    assert bucket.take()


def test_retry_after_blocks_the_bucket():
    clock = Clock()
    bucket = TokenBucket(rate_per_s=100, burst=100, clock=clock)
    bucket.throttled(retry_after_s=5)
    assert not bucket.take() and bucket.wait_time() == 5
    clock.now += 5
    assert bucket.take()


def test_backoff_grows_is_capped_jittered_and_honours_retry_after():
    rng = random.Random(7)
    delays = [retry_delay_s(a, base_s=1, cap_s=60, rng=rng) for a in range(1, 12)]
    assert all(0 <= d <= min(60, 2 ** (a - 1)) for a, d in zip(range(1, 12), delays, strict=True))
    assert retry_delay_s(1, base_s=1, retry_after_s=30, rng=rng) == 30
    assert len({round(retry_delay_s(5, rng=rng), 6) for _ in range(20)}) > 10
