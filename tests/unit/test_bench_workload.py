"""The benchmark's pure parts: the scaled mix, the expected keys, the percentiles."""

import pytest

from bench.summary import median_of, percentiles
from bench.workload import DAILY_MIX, build, scaled_mix
from processors.routing import fan_out_campaign, route


@pytest.mark.parametrize("n", [8, 100, 20_000, 65_001])
def test_scaled_mix_adds_up_and_keeps_the_proportions(n):
    counts = scaled_mix(n)
    assert sum(counts.values()) == n
    total = sum(DAILY_MIX.values())
    for name, count in counts.items():
        assert abs(count - n * DAILY_MIX[name] / total) < 1


def test_expected_keys_are_the_keys_the_router_gives():
    work = build(scaled_mix(400), "t1", partitions=3)
    routed, campaign = set(), []
    for topic, event in work.events:
        if topic == "campaign.launched":
            campaign, rejected = fan_out_campaign(event, topic, work.profiles, 1, 1, b"u")
            assert rejected == 0
            commands = campaign
        else:
            commands = route(topic, event, 1, 1, lambda _s, _u: None)
        routed |= {c.idempotency_key for c in commands}
    assert routed == set(work.expected)
    assert len({c.locale for c in campaign}) == 8


def test_runs_do_not_share_recipients():
    first, second = build({"order.placed": 5}, "a", 3), build({"order.placed": 5}, "b", 3)
    assert not set(first.expected) & set(second.expected)


def test_percentiles_nearest_rank():
    stats = percentiles([float(x) for x in range(1, 101)])
    assert (stats["p50"], stats["p95"], stats["p99"], stats["max"]) == (50, 95, 99, 100)
    assert percentiles([])["count"] == 0


def test_median_of_runs():
    runs = [{"run": str(i), "emails_per_s": v, "seconds": 1.0, "searchable_after_s": 1.0,
             "duplicates": 0, "lost": 0, "sink_received": 10,
             "latency_ms": {"critical": {"p50": v, "p99": v}},
             "cpu_s": {"worker-0": v}, "peak_rss_mb": {"worker-0": v}} for i, v in
            enumerate([10.0, 30.0, 20.0])]
    middle = median_of(runs)
    assert middle["emails_per_s"] == 20.0 and middle["repeat"] == 3
    assert middle["latency_ms"]["critical"]["p50"] == 20.0
