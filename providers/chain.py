"""Failover across a priority's providers, each behind its own breaker and token bucket.

The chain never retries a provider itself: a message either goes out through the first
healthy provider that takes it, or the sender gets one error that says whether a later
retry can help and how long to wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from providers.base import Provider, ProviderError, SendResult
from providers.breaker import CircuitBreaker
from providers.ratelimit import TokenBucket
from providers.scoring import ProviderStats, Weights, score

if TYPE_CHECKING:
    from processors.message import OutgoingEmail

# Wait this long for a token before trying the next provider instead (keeps latency bounded).
MAX_THROTTLE_WAIT_S = 2.0


@dataclass
class Guarded:
    provider: Provider
    breaker: CircuitBreaker
    bucket: TokenBucket
    cost_per_1k: float = 0.0
    region: str = ""
    stats: ProviderStats = field(default_factory=ProviderStats)


def record_failure(member: Guarded, err: ProviderError) -> ProviderError:
    """Breaker and bucket bookkeeping; a message-side refusal is re-raised (no failover)."""
    if not err.provider_fault:
        member.breaker.record_success()  # the provider answered; the message is bad
        raise err
    member.breaker.record_failure()
    if err.status == 429:
        member.bucket.throttled(err.retry_after_s)
    return err


class AllProvidersFailed(ProviderError):
    """No provider sent it. ``transient``: a retry later may succeed."""


class ProviderChain:
    """``weights`` set: try providers best score first (smart routing); else in order."""

    def __init__(self, members: Sequence[Guarded], weights: Weights | None = None) -> None:
        if not members:
            raise ValueError("a provider chain needs at least one provider")
        self.members = list(members)
        self.weights = weights
        # providers taken out while an alert on them is raised (streams/quarantine.py)
        self.quarantined: Callable[[], Collection[str]] = frozenset

    def available(self) -> list[Guarded]:
        """The members not taken out; all of them when every one is (an alert never makes
        mail undeliverable that a provider might still take)."""
        out = self.quarantined()
        if not out:
            return self.members
        kept = [m for m in self.members if m.provider.name not in out]
        return kept or self.members

    def order(self, region: str = "") -> list[Guarded]:
        members = self.available()
        if self.weights is None or len(members) < 2:
            return members
        dearest = max(m.cost_per_1k for m in members)
        return sorted(members, key=lambda m: -score(
            m.stats, m.bucket.rate_per_s, m.cost_per_1k, dearest,
            bool(region) and m.region == region, self.weights))

    async def send(self, message: OutgoingEmail, region: str = "") -> SendResult:
        errors: list[ProviderError] = []
        for member in self.order(region):
            if not member.breaker.allow():
                errors.append(ProviderError(member.provider.name, "circuit open", transient=True))
                continue
            wait = member.bucket.wait_time()
            if wait > MAX_THROTTLE_WAIT_S:
                member.breaker.probing = False  # not a probe after all
                errors.append(ProviderError(member.provider.name, "rate limited",
                                            transient=True, retry_after_s=wait))
                continue
            if wait:
                await asyncio.sleep(wait)  # slow down instead of hammering the provider
            member.bucket.take()
            started = time.monotonic()
            member.stats.in_flight += 1
            try:
                result = await member.provider.send(message)
            except ProviderError as err:
                member.stats.observe(not err.provider_fault, (time.monotonic() - started) * 1000)
                errors.append(record_failure(member, err))
                continue
            finally:
                member.stats.in_flight -= 1
            member.stats.observe(True, (time.monotonic() - started) * 1000)
            member.breaker.record_success()
            return result
        retry_after = min((e.retry_after_s for e in errors if e.retry_after_s), default=None)
        summary = "; ".join(str(e) for e in errors)[:500]
        raise AllProvidersFailed("chain", f"no provider took it: {summary}", transient=True,
                                 retry_after_s=retry_after)


class NoBulkProvider(Exception):
    """No provider of the chain can send in bulk right now: send one by one instead."""


BulkFactory = Callable[[str, int], Awaitable[Any]]


def bulk_capable(chain: ProviderChain) -> list[Guarded]:
    """Members with a batch API (SendGrid, Mailgun); SMTP and SES send one by one."""
    return [m for m in chain.available() if m.provider.supports_bulk]


async def send_bulk(chain: ProviderChain, render: BulkFactory, count: int,
                    sender: tuple[str, str]) -> tuple[str, list[SendResult]]:
    """One batch through the first healthy provider with a batch API.

    ``render(placeholder, max)`` renders the batch in that provider's placeholder syntax.
    Raises NoBulkProvider when none is usable (the caller sends one by one, with failover),
    or AllProvidersFailed when every bulk provider failed transiently.
    """
    errors: list[ProviderError] = []
    bulk_members = bulk_capable(chain)
    if not bulk_members:
        raise NoBulkProvider("no provider with a batch API in this chain")
    for member in bulk_members:
        if not member.breaker.allow():
            continue
        if member.bucket.wait_time() > MAX_THROTTLE_WAIT_S:
            member.breaker.probing = False
            continue
        await asyncio.sleep(member.bucket.wait_time())
        member.bucket.take()
        provider = member.provider
        bulk = await render(provider.bulk_placeholder or "", provider.bulk_max)
        try:
            results = await provider.send_bulk(bulk, sender)
        except ProviderError as err:
            errors.append(record_failure(member, err))
            continue
        member.breaker.record_success()
        return member.provider.name, results
    if not errors:
        raise NoBulkProvider("every bulk provider is open or throttled")
    retry_after = min((e.retry_after_s for e in errors if e.retry_after_s), default=None)
    raise AllProvidersFailed("chain", "; ".join(str(e) for e in errors)[:500], transient=True,
                             retry_after_s=retry_after)
