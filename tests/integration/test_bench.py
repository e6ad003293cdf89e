"""``flowmail bench`` end to end on the real stack, small: every email arrives exactly once at
a real smtp-sink (or the fake batch API), the report and its plots are written, and the raw
limits are measured. The numbers themselves are not asserted (docs/performance.md has them).
"""

import json
import os

import pytest

from bench.e2e import Options, run_bench
from bench.markdown import write_report


@pytest.fixture(autouse=True)
def bench_provider_timeouts(monkeypatch):
    """The bench workers inherit FLOWMAIL_* from this process, where the test worker's 2 s
    provider timeout is set. A batch call that the fake accepts but answers after the client
    gave up is retried, and the fake then holds the batch twice (seen: 293 of 400): an
    ambiguous timeout, which no provider API here can deduplicate. Give them the default."""
    monkeypatch.setenv("FLOWMAIL_PROVIDER_TIMEOUT_S", "10")


def _check(result, n, workers=None):
    workers = workers or [f"worker-{i}" for i in range(os.cpu_count() or 1)]
    assert result["n"] == n
    assert result["sink_received"] == n and result["unique_received"] == n
    assert result["duplicates"] == 0 and result["lost"] == 0 and result["foreign"] == 0
    assert result["emails_per_s"] > 0 and result["searchable_after_s"] > 0
    for process in (*workers, "kafka", "opensearch"):
        assert result["cpu_s"][process] >= 0 and result["peak_rss_mb"][process] > 0
    for jvm in ("kafka", "opensearch"):  # part of their CPU, never more
        assert 0 <= result["jit_cpu_s"][jvm] <= result["cpu_s"][jvm] + 0.02
    assert set(result["jit_cpu_s"]) == {"kafka", "opensearch"}
    assert result["cpu_s"]["publisher"] > 0  # counted, as the peer's producer is
    for stats in result["latency_ms"].values():
        assert 0 < stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"]


def test_mix_over_smtp_sink_with_limits_and_report(settings, stack, tmp_path):
    result = run_bench(settings, Options(n=240, provider="smtp", report_dir=tmp_path,
                                         tracking=True, warm_runs=1))
    _check(result, 240)
    tracking = result["tracking"]  # every open and click answered and written to Kafka
    assert tracking["failures"] == 0 and tracking["events_written"] == tracking["requests"]
    assert tracking["requests_per_s"] > 0 and tracking["times_email_rate"] > 0
    assert set(result["latency_ms"]) == {"critical", "transactional", "marketing"}
    assert sum(result["by_priority"].values()) == 240
    raw = result["limits"]["smtp_sink"]  # the best of three passes, each recorded
    assert len(raw["passes_per_s"]) == 3 and raw["messages_per_s"] == max(raw["passes_per_s"]) > 0
    # the raw limit is measured at the run's own mean message size
    assert result["message_bytes"] > 1000
    assert result["limits"]["smtp_sink"]["size_bytes"] == result["message_bytes"]
    # one unmeasured run first (at most one asked for), its JVMs' compiling share recorded
    warm = result["stack_warm_up"]
    assert warm["emails"] == 240 and len(warm["runs"]) == 1
    assert 0 <= warm["runs"][0]["jit_share"] <= 1.01 and warm["stack_started"] is False
    assert result["limits"]["kafka"]["passed"] == 240
    assert 0 < result["limits"]["fraction_of_kafka_passthrough"]
    report = write_report(result, "flowmail bench --n 240")
    text = report.read_text()
    assert "| critical |" in text and "smtp-source" in text and "tracking" in text
    assert "1 unmeasured run(s) of 240 emails" in text and "JIT compiling" in text
    assert (tmp_path / "latency.png").stat().st_size > 1000
    assert (tmp_path / "throughput.png").stat().st_size > 1000
    json.dumps(result)  # the --json output is plain JSON


def test_backlog_reports_critical_latency_behind_a_campaign(settings, stack, tmp_path):
    """3,600 recipients: more than a campaign step (streams/campaign_runner.STEP_PROFILES)
    on each of the three partitions, so every run is handed out in several steps."""
    result = run_bench(settings, Options(n=3600, provider="sendgrid", scenario="backlog",
                                         report_dir=tmp_path, warm_runs=0))
    _check(result, 3636)
    assert result["by_priority"] == {"marketing": 3600, "critical": 36}
    assert result["latency_ms"]["critical"]["count"] == 36
    # target 4's limit and budget, from the batch API alone in the same run
    alone, floor = result["limits"]["batch_api_alone"], result["limits"]["batch_floor"]
    assert alone["recipients_per_s"] > 0 and alone["fan_out_cpu_us"] > 0
    assert alone["calls_cpu_us"] > 0 and alone["fake_cpu_us"] > 0
    assert all(us > 0 for us in floor["parts_us"].values()) and len(floor["parts_us"]) == 4
    assert floor["left_us"] == pytest.approx(floor["budget_us"] - floor["floor_us"], abs=0.2)
    text = write_report(result, "flowmail bench --provider sendgrid").read_text()
    assert "the batch API alone" in text and "Target 4's budget" in text


@pytest.mark.parametrize("processes", [1, 4])
def test_fewer_and_more_worker_processes_than_cores(settings, stack, tmp_path, processes):
    """The default is one worker process per core (checked above); the scaling table's other
    rows (docs/perf/scaling) in small: every email once, each process measured."""
    result = run_bench(settings, Options(n=120, provider="smtp", workers=processes,
                                         limits=False, report_dir=tmp_path, warm_runs=0))
    names = [f"worker-{i}" for i in range(processes)]
    _check(result, 120, workers=names)
    assert result["workers"] == processes
    assert sorted(k for k in result["cpu_s"] if k.startswith("worker")) == names
    for name in names:  # the memory of each process, every second of the run
        assert result["start_rss_mb"][name] > 0 and name in result["rss_mb_by_second"]
