"""Smart routing: the score prefers healthy, unloaded, cheap providers near the recipient."""

from providers.breaker import CircuitBreaker
from providers.chain import Guarded, ProviderChain
from providers.ratelimit import TokenBucket
from providers.scoring import ProviderStats, Weights, score


class Named:
    def __init__(self, name):
        self.name = name


def member(name, cost, region, success=1.0, latency_ms=50.0, in_flight=0, rate=100):
    stats = ProviderStats(success=success, latency_ms=latency_ms, in_flight=in_flight)
    return Guarded(Named(name), CircuitBreaker(), TokenBucket(rate_per_s=rate, burst=rate),
                   cost, region, stats)


def names(chain, region=""):
    return [m.provider.name for m in chain.order(region)]


def test_case_study_weights_by_default():
    assert Weights() == Weights(health=0.4, load=0.3, cost=0.2, geo=0.1)


def test_cheapest_wins_when_all_else_is_equal():
    chain = ProviderChain([member("sendgrid", 0.6, "us"), member("ses", 0.1, "us")], Weights())
    assert names(chain) == ["ses", "sendgrid"]


def test_failing_provider_drops_behind():
    chain = ProviderChain([member("ses", 0.1, "eu", success=0.2),
                           member("sendgrid", 0.6, "eu")], Weights())
    assert names(chain) == ["sendgrid", "ses"]


def test_loaded_provider_drops_behind():
    chain = ProviderChain([member("ses", 0.1, "eu", in_flight=14, rate=14),
                           member("mailgun", 0.8, "eu", in_flight=0, rate=100)], Weights())
    assert names(chain) == ["mailgun", "ses"]


def test_region_breaks_ties():
    chain = ProviderChain([member("us-one", 0.5, "us"), member("eu-one", 0.5, "eu")], Weights())
    assert names(chain, "eu") == ["eu-one", "us-one"]
    assert names(chain, "us") == ["us-one", "eu-one"]


def test_without_weights_the_list_order_holds():
    chain = ProviderChain([member("sendgrid", 0.6, "us"), member("ses", 0.1, "eu")])
    assert names(chain, "eu") == ["sendgrid", "ses"]


def test_stats_follow_recent_outcomes():
    stats = ProviderStats()
    for _ in range(10):
        stats.observe(False, 2000)
    assert stats.success < 0.15 and stats.latency_ms > 1500
    assert score(stats, 100, 0, 1, False, Weights()) < score(ProviderStats(), 100, 0, 1, False,
                                                             Weights())
