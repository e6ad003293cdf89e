"""The benchmark's numbers: percentiles, one run's summary, medians over runs, the
machine, and the workers' event-loop lag."""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

import requests

from bench.workload import Workload
from core.vocab import Priority


def percentiles(values: list[float]) -> dict[str, float]:
    """Nearest-rank p50/p95/p99 and max, in the unit given."""
    if not values:
        return {"count": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]

    return {"count": len(ordered), "p50": round(rank(0.50), 1), "p95": round(rank(0.95), 1),
            "p99": round(rank(0.99), 1), "max": round(ordered[-1], 1),
            "mean": round(statistics.fmean(ordered), 1)}


def summarize(options: Any, work: Workload, stamps: list[float],
              received: list[tuple[str, float]], last_accept: float, searchable_at: float,
              processes: dict[str, dict[str, float]], run: str) -> dict[str, Any]:
    first_publish = min(stamps)
    counts: dict[str, int] = {}
    first_seen: dict[str, float] = {}
    foreign = 0
    for key, at in received:
        if key not in work.expected:
            foreign += 1
            continue
        counts[key] = counts.get(key, 0) + 1
        first_seen[key] = min(at, first_seen.get(key, at))
    by_priority: dict[str, list[float]] = {p.value: [] for p in Priority}
    spans: dict[str, list[float]] = {}
    for key, at in first_seen.items():
        item = work.expected[key]
        by_priority[item.priority.value].append((at - stamps[item.event_index]) * 1000)
        span = spans.setdefault(item.priority.value, [stamps[item.event_index], at])
        span[0], span[1] = min(span[0], stamps[item.event_index]), max(span[1], at)
    elapsed = last_accept - first_publish
    timeline: dict[int, int] = {}
    for at in first_seen.values():
        second = int(at - first_publish)
        timeline[second] = timeline.get(second, 0) + 1
    return {
        "run": run, "n": len(work.expected), "provider": options.provider,
        "scenario": options.scenario, "workers": options.workers,
        "events_published": len(work.events), "by_priority": work.count_by_priority(),
        "emails_per_s": round(len(first_seen) / elapsed, 1) if elapsed > 0 else 0.0,
        "seconds": round(elapsed, 2),
        "sink_received": sum(counts.values()), "unique_received": len(first_seen),
        "duplicates": sum(c - 1 for c in counts.values()),
        "lost": len(work.expected) - len(first_seen), "foreign": foreign,
        "latency_ms": {p: percentiles(v) for p, v in by_priority.items() if v},
        # emails of one priority / (its first publish to its last accept)
        "emails_per_s_by_priority": {
            p: round(len(by_priority[p]) / (end - start), 1) if end > start else 0.0
            for p, (start, end) in spans.items()},
        "searchable_after_s": round(searchable_at - first_publish, 2),
        "searchable_after_last_accept_s": round(searchable_at - last_accept, 2),
        "cpu_s": {name: p["cpu_s"] for name, p in processes.items()},
        "peak_rss_mb": {name: p["peak_rss_mb"] for name, p in processes.items()},
        # part of cpu_s: a JVM compiling its own code (long-running ones are done with it)
        "jit_cpu_s": {name: p["jit_cpu_s"] for name, p in processes.items() if "jit_cpu_s" in p},
        "start_rss_mb": {name: p.get("start_rss_mb", 0.0) for name, p in processes.items()},
        "rss_mb_by_second": {name: p.get("rss_mb_by_second", [])
                             for name, p in processes.items() if name.startswith(("worker",
                                                                                 "critical"))},
        "throughput_per_s": [timeline.get(s, 0) for s in range(int(elapsed) + 1)],
        "latencies_ms": {p: sorted(round(x, 1) for x in v) for p, v in by_priority.items()},
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Numbers become the median over runs; the rest comes from the median-throughput run."""
    if len(runs) == 1:
        return runs[0]
    ordered = sorted(runs, key=lambda r: r["emails_per_s"])
    middle = dict(ordered[len(ordered) // 2])

    def med(path: list[str]) -> float:
        values = []
        for run in runs:
            value: Any = run
            for part in path:
                value = value.get(part, {}) if isinstance(value, dict) else {}
            if isinstance(value, (int, float)):
                values.append(value)
        return round(statistics.median(values), 2) if values else 0.0

    for name in ("emails_per_s", "seconds", "searchable_after_s", "duplicates", "lost",
                 "sink_received"):
        middle[name] = med([name])
    for priority, stats in middle["latency_ms"].items():
        middle["latency_ms"][priority] = {k: med(["latency_ms", priority, k]) for k in stats}
    for group in ("cpu_s", "jit_cpu_s", "peak_rss_mb", "start_rss_mb"):
        middle[group] = {k: med([group, k]) for k in middle.get(group, {})}
    middle["repeat"] = len(runs)
    middle["runs"] = [{k: r[k] for k in ("run", "emails_per_s", "duplicates", "lost",
                                         "sink_received", "cpu_s", "jit_cpu_s") if k in r}
                      for r in runs]
    return middle


def machine() -> dict[str, Any]:
    import platform

    import psutil
    return {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(), "platform": platform.platform(),
            "cpu_model": _cpu_model()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def loop_lag(port: int) -> dict[str, float]:
    """Upper bucket bounds of the worker's event-loop lag histogram at p50/p99/max."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.RequestException:
        return {}
    buckets = []
    for line in text.splitlines():
        if line.startswith("flowmail_event_loop_lag_seconds_bucket"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(bound), float(line.rsplit(" ", 1)[1])))
    if not buckets or buckets[-1][1] == 0:
        return {}
    total = buckets[-1][1]

    def upper(q: float) -> float:
        return next(bound for bound, count in buckets if count >= q * total) * 1000

    return {"p50_ms_le": upper(0.5), "p99_ms_le": upper(0.99), "max_ms_le": upper(1.0)}


def mean_batches(port: int) -> dict[str, float]:
    """Mean records per batch of each batch stage of a worker (critical, ..., sink)."""
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except requests.RequestException:
        return {}
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for suffix, into in (("_sum{", sums), ("_count{", counts)):
            if line.startswith("flowmail_batch_records" + suffix):
                group = line.split('group="', 1)[1].split('"', 1)[0]
                into[group] = float(line.rsplit(" ", 1)[1])
    return {g: round(sums[g] / counts[g], 1) for g in sums if counts.get(g)}
