"""Failover, breakers and throttling across real provider modules and fake APIs."""

from __future__ import annotations

import pytest

from providers.base import ProviderError
from providers.breaker import BreakerState, CircuitBreaker
from providers.chain import AllProvidersFailed, Guarded, ProviderChain
from providers.ratelimit import TokenBucket
from tests.providers.test_providers import mailgun, message, sendgrid


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def apis(fake_apis):
    fake_apis.reset()
    yield fake_apis
    fake_apis.primary_down()  # the integration worker's default, should it still run


def chain(apis, clock, threshold=3):
    def guard(provider):
        return Guarded(provider, CircuitBreaker(threshold, cooldown_s=30, clock=clock),
                       TokenBucket(rate_per_s=1000, burst=1000, clock=clock))
    return ProviderChain([guard(sendgrid(apis)), guard(mailgun(apis))])


async def test_primary_down_all_mail_goes_through_the_next_and_the_breaker_cycles(apis):
    clock = Clock()
    providers = chain(apis, clock)
    apis.faults(apis.sendgrid_url, status=500, count=-1)
    results = [await providers.send(message(index=i % 8)) for i in range(10)]
    assert {r.provider for r in results} == {"mailgun"}
    assert len(apis.accepted(apis.mailgun_url)) == 10
    primary = providers.members[0].breaker
    assert primary.state is BreakerState.OPEN
    refused_while_open = apis.accepted(apis.sendgrid_url)
    assert refused_while_open == []
    # sendgrid was asked only until its breaker opened (3), not for all 10 messages
    assert (await _refused(apis)) == 3

    apis.faults(apis.sendgrid_url, status=0, count=0)  # the primary recovers
    clock.now += 30  # cool-down over: the next send is the half-open probe
    result = await providers.send(message())
    assert result.provider == "sendgrid" and primary.state is BreakerState.CLOSED


async def _refused(apis):
    import requests
    return requests.get(f"{apis.sendgrid_url}/_fake/messages", timeout=5).json()["refused"]


async def test_a_bad_message_is_not_retried_on_other_providers(apis):
    providers = chain(apis, Clock())
    apis.faults(apis.sendgrid_url, status=400, count=1)
    with pytest.raises(ProviderError) as err:
        await providers.send(message())
    assert not err.value.provider_fault and apis.accepted(apis.mailgun_url) == []
    assert providers.members[0].breaker.state is BreakerState.CLOSED


async def test_429_blocks_the_provider_for_retry_after_and_fails_over(apis):
    clock = Clock()
    providers = chain(apis, clock)
    apis.faults(apis.sendgrid_url, status=429, count=1, retry_after=60)
    assert (await providers.send(message())).provider == "mailgun"
    assert providers.members[0].bucket.wait_time() == 60
    assert (await providers.send(message())).provider == "mailgun"  # sendgrid not even asked
    clock.now += 60
    assert (await providers.send(message())).provider == "sendgrid"


async def test_everything_down_is_one_transient_error_with_the_soonest_retry(apis):
    providers = chain(apis, Clock())
    apis.faults(apis.sendgrid_url, status=503, count=-1)
    apis.faults(apis.mailgun_url, status=429, count=-1, retry_after=12)
    with pytest.raises(AllProvidersFailed) as err:
        await providers.send(message())
    assert err.value.transient and err.value.retry_after_s == 12
