"""``flowmail bench``: the whole pipeline on the local stack, measured from outside.

One run: a fresh consumer group (``flowmail-bench-<run>``) of K worker processes, the
campaign's customers stored in the profiles table, N domain events published in the case
study's mix, and the sink watched until every expected idempotency key has arrived and every
``sent`` delivery event is searchable. Latency is sink clock minus publish clock (same host).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from bench.procstats import ProcessStats
from bench.sinks import BenchError, Sink, free_port, start_sink
from bench.workload import EMAIL_TYPE_OF, Workload, build, scaled_mix
from flowmail.localstack import LocalStack
from flowmail.publisher import Publisher, default_key
from flowmail.settings import Settings
from flowmail.vocab import Priority
from streams.topic_admin import TopicAdmin
from streams.topics import PROFILES, ledger_changelog, topic_specs

BACKLOG_CRITICAL_SHARE = 100  # the 20,000 marketing, then 200 critical
BACKLOG_DRAINING = 1000  # marketing emails at the sink before the critical ones are published


@dataclass(frozen=True)
class Options:
    n: int = 20_000
    provider: str = "smtp"
    scenario: str = "mix"  # or "backlog"
    workers: int = 1
    repeat: int = 1
    layout: str = "single"  # or "split"
    smtp_host: str | None = None
    smtp_port: int | None = None
    timeout_s: float = 900.0
    limits: bool = True
    profile: bool = False
    report_dir: Path | None = None


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


def _deadline_poll(check: Any, timeout_s: float, what: str, every_s: float = 0.2,
                   alive: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{what} not reached within {timeout_s:.0f}s")
        time.sleep(every_s)


@dataclass(frozen=True)
class Role:
    """A kind of worker process: its name, ``flowmail worker`` options, and app id suffix."""

    name: str
    args: tuple[str, ...] = ()
    app_suffix: str = ""
    nice: int = 0  # batch work yields the CPU to the interactive priorities


def roles(layout: str) -> list[Role]:
    """single: every agent in each process (one consumer group). split: the router with the
    critical and transactional senders in one consumer group; marketing senders and the
    OpenSearch sink in another, as deploy/k8s runs them, so the bulk work cannot delay the
    critical stream's fetches (README, "Priorities")."""
    if layout == "split":
        return [Role("main", ("--agents", "router,sender", "--priorities",
                              "critical,transactional")),
                Role("bulk", ("--agents", "sender,sink", "--priorities", "marketing"), "-bulk",
                     nice=10)]
    return [Role("all")]


class Workers:
    """K processes of each role, started one by one (the first of a new group places it at
    the end of its topics), logs under the report dir."""

    def __init__(self, settings: Settings, count: int, provider: str, env: dict[str, str],
                 log_dir: Path, layout: str = "single") -> None:
        self.settings, self.count, self.provider = settings, count, provider
        self.env, self.log_dir, self.layout = env, log_dir, layout
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.names: list[str] = []

    def start(self, timeout_s: float = 180.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for role in roles(self.layout):
            for index in range(self.count):
                name = f"worker-{index}" if role.name == "all" else f"worker-{role.name}-{index}"
                port = free_port()
                env = {**os.environ, **self.env, "FLOWMAIL_WEB_PORT": str(port),
                       "FLOWMAIL_APP_ID": self.settings.app_id + role.app_suffix}
                log = open(self.log_dir / f"{name}.log", "wb")
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "flowmail", "worker", "--provider", self.provider,
                     "--new-group-starts-at", "latest", "--loglevel", "warning", *role.args],
                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                    preexec_fn=(lambda n=role.nice: os.nice(n)) if role.nice else None))
                self.ports.append(port)
                self.names.append(name)
                last = len(self.procs) - 1
                _deadline_poll(lambda last=last: self._ready(last), timeout_s,
                               f"{name} ready", alive=self.check_alive)
        _deadline_poll(lambda: all(self._ready(i) for i in range(len(self.procs))), timeout_s,
                       "all workers ready", alive=self.check_alive)

    def _ready(self, index: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.ports[index]}/ready", timeout=2).ok
        except requests.RequestException:
            return False

    def check_alive(self) -> None:
        for index, proc in enumerate(self.procs):
            if proc.poll() is not None:
                name = self.names[index]
                raise BenchError(f"{name} exited ({proc.returncode}); see "
                                 f"{self.log_dir / f'{name}.log'}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def seed_profiles(bootstrap: str, profiles: list[dict[str, Any]], remove: bool = False) -> None:
    """Write the campaign's customers into the profiles table's changelog (as the router
    would have from their sign-ups), or tombstone them again after the run."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 20,
                         "compression.type": "lz4"})
    for person in profiles:
        value = None if remove else json.dumps(person).encode()
        while True:
            try:
                producer.produce(PROFILES, key=json.dumps(person["user_id"]).encode(),
                                 value=value, partition=person["partition"])
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    if producer.flush(60):
        raise BenchError("profiles not acknowledged by Kafka within 60s")


def publish(publisher: Publisher, events: list[tuple[str, dict[str, Any]]]) -> list[float]:
    """Encode first (the SDK's validation is not the pipeline's cost), then produce each,
    stamping the wall clock just before its produce call."""
    encoded = [(event_type, publisher.encode(event_type, event),
                default_key(event_type, event)) for event_type, event in events]
    stamps = []
    for event_type, payload, key in encoded:
        stamps.append(time.time())
        publisher.send_encoded(event_type, payload, key)
    publisher.flush(60)
    return stamps


def searchable(settings: Settings, event_ids: list[str]) -> int:
    """``sent`` delivery events of this run that a search can see now (no forced refresh)."""
    query = {"query": {"bool": {"filter": [{"terms": {"source_event_id": event_ids}},
                                           {"term": {"status": "sent"}}]}}}
    try:
        answer = requests.post(f"{settings.opensearch_url}/{settings.index_prefix}-*/_count",
                               json=query, timeout=10)
    except requests.RequestException:
        return 0
    return int(answer.json().get("count", 0)) if answer.ok else 0


def _workload(options: Options, run: str, partitions: int) -> Workload:
    if options.scenario == "backlog":
        critical = max(1, options.n // BACKLOG_CRITICAL_SHARE)
        return build({"marketing": options.n, "user.password_reset_requested": critical},
                     run, partitions)
    return build(scaled_mix(options.n), run, partitions)


def run_once(settings: Settings, options: Options, stack: LocalStack, sink: Sink,
             report_dir: Path) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    bench = replace(settings, app_id=f"flowmail-bench-{run}")
    app_ids = [bench.app_id + role.app_suffix for role in roles(options.layout)]
    for app_id in app_ids:
        TopicAdmin(bench.kafka_bootstrap, bench.replication_factor).apply(
            topic_specs(replace(bench, app_id=app_id)))
    work = _workload(options, run, bench.partitions_domain)
    sink.reset()
    seed_profiles(bench.kafka_bootstrap, work.profiles)
    env = {**sink.worker_env(),
           # the local sink takes thousands a second; a real relay's rate is a setting
           "FLOWMAIL_PROVIDER_RATES": f"{options.provider}=1000000"}
    workers = Workers(bench, options.workers, options.provider, env, report_dir / f"logs-{run}",
                      options.layout)
    profiler = None
    try:
        workers.start()
        pids = {name: p.pid for name, p in zip(workers.names, workers.procs, strict=True)}
        pids.update({"kafka": stack.kafka.proc.pid(), "opensearch": stack.opensearch.proc.pid()})
        if sink.pid:
            pids["sink"] = sink.pid
        warm_keys = _warm_up(bench, sink, run, options.timeout_s, workers)
        stats = ProcessStats({k: v for k, v in pids.items() if v}).start()
        if options.profile:
            profiler = subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record",
                 "--pid", str(workers.procs[0].pid), "--rate", "200",
                 "--format", "raw", "--output", str(report_dir / f"profile-{run}.txt"),
                 "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stamps = _publish_scenario(bench, options, work, sink)
        received = _wait_for_sink(work, sink, options.timeout_s, workers)
        last_accept = max(at for key, at in received if key in work.expected)
        ids = sorted({event["event_id"] for _, event in work.events})
        _deadline_poll(lambda: searchable(bench, ids) >= len(work.expected), options.timeout_s,
                       f"{len(work.expected)} searchable delivery events", every_s=0.1,
                       alive=workers.check_alive)
        searchable_at = time.time()
        # late duplicates, if any, have arrived by now
        received = [(key, at) for key, at in sink.receipts() if key not in warm_keys]
        processes = stats.stop()
        lags = {name: loop_lag(port) for name, port in zip(workers.names, workers.ports,
                                                           strict=True)}
        buffers_full = {name: requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
                        .json().get("stream_buffers_full", {})
                        for name, port in zip(workers.names, workers.ports, strict=True)}
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        workers.stop()
        seed_profiles(bench.kafka_bootstrap, work.profiles, remove=True)
        for app_id in app_ids:
            _drop_ledgers(replace(bench, app_id=app_id))
    result = summarize(options, work, stamps, received, last_accept, searchable_at, processes,
                       run)
    result["event_loop_lag"] = lags
    result["stream_buffers_full"] = buffers_full
    return result


def _warm_up(settings: Settings, sink: Sink, run: str, timeout_s: float,
             workers: Workers) -> set[str]:
    """One email of each transactional type first, not measured: a production worker is
    warm (producer metadata for every topic, connections, first-call code paths cost about a
    second that the case study's numbers never include)."""
    warm = build({event_type: 1 for event_type in EMAIL_TYPE_OF if event_type != "marketing"},
                 f"{run}w", settings.partitions_domain)
    with Publisher(settings.kafka_bootstrap) as publisher:
        publish(publisher, warm.events)
    keys = set(warm.expected)
    _deadline_poll(lambda: keys <= {key for key, _ in sink.receipts()}, timeout_s,
                   "warm-up emails at the sink", alive=workers.check_alive)
    return keys


def _publish_scenario(settings: Settings, options: Options, work: Workload,
                      sink: Sink) -> list[float]:
    with Publisher(settings.kafka_bootstrap) as publisher:
        if options.scenario != "backlog":
            return publish(publisher, work.events)
        # the campaign first; the critical mail once the backlog is really draining
        first = publish(publisher, work.events[:1])
        draining = min(BACKLOG_DRAINING, len(work.profiles) // 5)
        _deadline_poll(lambda: len(sink.receipts()) >= draining, options.timeout_s,
                       f"first {draining} marketing emails at the sink")
        return first + publish(publisher, work.events[1:])


def _wait_for_sink(work: Workload, sink: Sink, timeout_s: float,
                   workers: Workers) -> list[tuple[str, float]]:
    expected = set(work.expected)
    latest: list[list[tuple[str, float]]] = [[]]

    def complete() -> bool:
        latest[0] = sink.receipts()
        return expected <= {key for key, _ in latest[0]}

    try:
        _deadline_poll(complete, timeout_s, f"{len(expected)} emails at the sink", every_s=0.25,
                       alive=workers.check_alive)
    except BenchError as err:
        arrived = expected & {key for key, _ in latest[0]}
        raise BenchError(f"{err}: {len(arrived)} of {len(expected)} arrived") from err
    return latest[0]


def _drop_ledgers(settings: Settings) -> None:
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    names = [ledger_changelog(settings.app_id, p) for p in Priority]
    for future in admin.delete_topics(names, operation_timeout=30).values():
        try:
            future.result()
        except Exception:  # noqa: BLE001, S110 - already gone is fine
            pass


def summarize(options: Options, work: Workload, stamps: list[float],
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
        "scenario": options.scenario, "workers": options.workers, "layout": options.layout,
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
    for group in ("cpu_s", "peak_rss_mb"):
        middle[group] = {k: med([group, k]) for k in middle[group]}
    middle["repeat"] = len(runs)
    middle["runs"] = [{k: r[k] for k in ("run", "emails_per_s", "duplicates", "lost",
                                         "sink_received")} for r in runs]
    return middle


def run_bench(settings: Settings, options: Options) -> dict[str, Any]:
    stack = LocalStack.from_settings(settings)
    stack.up(log=lambda line: print(line, file=sys.stderr))
    report_dir = options.report_dir or settings.home / "bench" / time.strftime("%Y%m%d-%H%M%S")
    report_dir.mkdir(parents=True, exist_ok=True)
    sink = start_sink(options.provider, settings.home / "bench" / "sink",
                      options.smtp_host, options.smtp_port)
    try:
        runs = []
        for index in range(options.repeat):
            print(f"run {index + 1}/{options.repeat}: {options.scenario}, "
                  f"provider {options.provider}, {options.workers} worker(s)", file=sys.stderr)
            result = run_once(settings, options, stack, sink, report_dir)
            print(f"  {result['emails_per_s']} emails/s, {result['lost']} lost, "
                  f"{result['duplicates']} duplicates", file=sys.stderr)
            runs.append(result)
    finally:
        sink.stop()
    result = median_of(runs)
    if options.limits:
        from bench.limits import kafka_passthrough_limit, smtp_sink_limit
        size = 12_000
        limits: dict[str, Any] = {"kafka": kafka_passthrough_limit(settings.kafka_bootstrap,
                                                                   result["n"], 1_000)}
        if options.provider == "smtp" and not options.smtp_host:
            limits["smtp_sink"] = smtp_sink_limit(settings.home / "bench" / "sink-raw",
                                                  result["n"], size)
            limits["fraction_of_smtp_sink"] = round(
                result["emails_per_s"] / limits["smtp_sink"]["messages_per_s"], 3)
        limits["fraction_of_kafka_passthrough"] = round(
            result["emails_per_s"] / limits["kafka"]["passthrough_per_s"], 3)
        result["limits"] = limits
    result["machine"] = machine()
    result["report_dir"] = str(report_dir)
    profiles = sorted(report_dir.glob("profile-*.txt"))
    if profiles:
        from bench.profile_summary import summarize as profile_top
        result["profile_top"] = profile_top(profiles[-1], top=20)
    return result


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
