"""``flowmail bench``: the whole pipeline on the local stack, measured from outside.

One run: a fresh consumer group (``flowmail-bench-<run>``) of K worker processes, the
campaign's customers stored in the profiles table, N domain events published in the case
study's mix, and the sink watched until every expected idempotency key has arrived and every
``sent`` delivery event is searchable. Latency is sink clock minus publish clock (same host).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests
from confluent_kafka import Producer

from bench import WARM_JIT_SHARE, WARM_STACK_RUNS_MAX, peer
from bench.kafka_io import delete_topics, produce_waiting
from bench.procstats import ProcessStats
from bench.sinks import BenchError, Sink, SmtpSink, dump_root, start_sink
from bench.summary import loop_lag, machine, mean_batches, median_of, summarize
from bench.workers import Workers, deadline_poll
from bench.workload import DAILY_MIX, Workload, build, scaled_mix
from core.kafka_config import client_config
from core.opensearch_client import http_session
from core.settings import Settings
from core.vocab import Priority
from flowmail.localstack import LocalStack
from flowmail.publisher import Publisher, default_key
from flowmail.supervisor import process_count
from processors.profiles import profile_key
from streams.topic_admin import TopicAdmin
from streams.topics import PROFILES, ledger_changelog, topic_specs

PEER_WORKERS = {"mix": (1, 2), "backlog": (1,)}  # the peer's configurations to beat
BACKLOG_CRITICAL_SHARE = 100  # the 20,000 marketing, then 200 critical
WARM_STACK_EMAILS = 20_000  # unmeasured, after starting the stack's JVMs (5,000: not enough)
JVMS = frozenset({"kafka", "opensearch"})  # processes whose JIT compiling is reported
MESSAGE_BYTES_MAX = 16_384  # room per message when choosing where smtp-sink dumps
BACKLOG_DRAINING = 1000  # marketing emails at the sink before the critical ones are published


@dataclass(frozen=True)
class Options:
    n: int = 20_000
    provider: str = "smtp"
    scenario: str = "mix"  # or "backlog"
    workers: int = 0  # 0: what `flowmail worker` starts (one process per core)
    repeat: int = 1
    smtp_host: str | None = None
    smtp_port: int | None = None
    timeout_s: float = 900.0
    limits: bool = True
    profile: bool = False
    report_dir: Path | None = None
    peer: Path | None = None  # the BullMQ + Nodemailer harness, run interleaved
    tracking: bool = False  # then load the tracking endpoints (bench/tracking.py)
    warm_runs: int = WARM_STACK_RUNS_MAX  # at most, until the JVMs' compilers are quiet


def seed_profiles(bootstrap: str, profiles: list[dict[str, Any]], remove: bool = False) -> None:
    """Write the campaign's customers into the profiles table's changelog (as the router
    would have from their sign-ups), or tombstone them again after the run."""
    producer = Producer(client_config(bootstrap) | {"acks": "all", "linger.ms": 20,
                         "compression.type": "lz4"})
    for person in profiles:
        value = None if remove else json.dumps(person).encode()
        key = profile_key(person["shop_id"], person["user_id"])
        produce_waiting(producer, PROFILES, json.dumps(key).encode(), value,
                        partition=person["partition"])
    if producer.flush(60):
        raise BenchError("profiles not acknowledged by Kafka within 60s")


def publish(publisher: Publisher, events: list[tuple[str, dict[str, Any]]],
            cpu: list[float] | None = None) -> list[float]:
    """Encode first (the SDK's validation is not the pipeline's timing), then produce each,
    stamping the wall clock just before its produce call. ``cpu`` gets the CPU seconds this
    process spent on it added (the publisher's CPU counts, as the peer's producer's does)."""
    began = _process_cpu_s()
    encoded = [(event_type, publisher.encode(event_type, event),
                default_key(event_type, event)) for event_type, event in events]
    stamps = []
    for event_type, payload, key in encoded:
        stamps.append(time.time())
        publisher.send_encoded(event_type, payload, key)
    publisher.flush(60)
    if cpu is not None:
        cpu.append(_process_cpu_s() - began)
    return stamps


def _process_cpu_s() -> float:
    """This process's CPU seconds to the nanosecond: a backlog run publishes five events, a
    few hundred microseconds that getrusage's ticks and two decimals showed as 0.0."""
    return time.process_time()


def searchable(settings: Settings, event_ids: list[str]) -> int:
    """``sent`` delivery events of this run that a search can see now (no forced refresh)."""
    query = {"query": {"bool": {"filter": [{"terms": {"source_event_id": event_ids}},
                                           {"term": {"status": "sent"}}]}}}
    try:
        answer = http_session(settings).post(
            f"{settings.opensearch_url}/{settings.index_prefix}-*/_count", json=query,
            timeout=10)
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
    TopicAdmin(bench.kafka_bootstrap, bench.replication_factor).apply(topic_specs(bench))
    work = _workload(options, run, bench.partitions_domain)
    sink.reset()
    seed_profiles(bench.kafka_bootstrap, work.profiles)
    env = {**sink.worker_env(),
           # the local sink takes thousands a second; a real relay's rate is a setting
           "FLOWMAIL_PROVIDER_RATES": f"{options.provider}=1000000"}
    workers = Workers(bench, options.workers, options.provider, env, report_dir / f"logs-{run}")
    profilers: list[subprocess.Popen[bytes]] = []
    try:
        workers.start()
        pids = {name: p.pid for name, p in zip(workers.names, workers.procs, strict=True)}
        pids.update({"kafka": stack.kafka.proc.pid(), "opensearch": stack.opensearch.proc.pid()})
        if sink.pid:
            pids["sink"] = sink.pid
        # one publisher for the run, as a shop's services keep theirs: a new idempotent
        # librdkafka producer holds its first records back 50-500 ms while it gets its
        # producer id (librdkafka PR 5032), which the warm-up pays, not the measured run
        publisher = Publisher(bench.kafka_bootstrap)
        warm_keys = _warm_up(publisher, sink, run, bench.partitions_domain, options.timeout_s,
                             workers)
        stats = ProcessStats({k: v for k, v in pids.items() if v}, JVMS).start()
        if options.profile:  # every worker process, one file each
            profilers = [subprocess.Popen(
                [str(Path(sys.executable).with_name("py-spy")), "record",
                 "--pid", str(proc.pid), "--rate", "100", "--gil", "--format", "raw",
                 "--output", str(report_dir / f"profile-{run}-{name}.txt"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for name, proc in zip(workers.names, workers.procs, strict=True)]
        publisher_cpu: list[float] = []
        stamps = _publish_scenario(publisher, options, work, sink, publisher_cpu)
        received = _wait_for_sink(work, sink, options.timeout_s, workers)
        last_accept = max(at for key, at in received if key in work.expected)
        ids = sorted({event["event_id"] for _, event in work.events})
        deadline_poll(lambda: searchable(bench, ids) >= len(work.expected), options.timeout_s,
                       f"{len(work.expected)} searchable delivery events", every_s=0.25,
                       alive=workers.check_alive)
        searchable_at = time.time()
        # late duplicates, if any, have arrived by now
        received = [(key, at) for key, at in sink.receipts() if key not in warm_keys]
        message_bytes = sink.message_bytes() if isinstance(sink, SmtpSink) else 0
        processes = stats.stop()
        batches = {name: mean_batches(port) for name, port in zip(workers.names, workers.ports,
                                                                   strict=True)}
        lags = {name: loop_lag(port) for name, port in zip(workers.names, workers.ports,
                                                           strict=True)}
        buffers_full = {name: requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
                        .json().get("stream_buffers_full", {})
                        for name, port in zip(workers.names, workers.ports, strict=True)}
    finally:
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        workers.stop()
        seed_profiles(bench.kafka_bootstrap, work.profiles, remove=True)
        drop_ledgers(bench)
    result = summarize(options, work, stamps, received, last_accept, searchable_at, processes,
                       run)
    if message_bytes:
        result["message_bytes"] = message_bytes
    result["cpu_s"]["publisher"] = round(sum(publisher_cpu), 4)
    result["event_loop_lag"] = lags
    result["mean_batch_records"] = batches
    result["stream_buffers_full"] = buffers_full
    return result


def _warm_stack(settings: Settings, options: Options, stack: LocalStack, sink: Sink,
                report_dir: Path, stack_started: bool) -> dict[str, Any] | None:
    """Runs that are not measured, until Kafka's and OpenSearch's JIT compilers are quiet.
    A JVM compiles its hot code over its first minutes, and a production broker or search
    node has long done so. After a start, the JVMs spent 65, 58, 53, 42, 29, 30, 33 and 17 %
    of their CPU compiling in eight runs of 20,000 emails: 10.2 CPU-s in the first, 3.8 in
    the second, which the emails were charged with when one warm-up run was all there was
    (docs/perf/peer-mix-19.json). The report says how many runs it took, and what the
    compilers still spent in the measured runs."""
    emails = min(options.n, WARM_STACK_EMAILS)
    runs: list[dict[str, Any]] = []
    while len(runs) < options.warm_runs:
        print(f"warming the stack: unmeasured run {len(runs) + 1} of {emails} emails",
              file=sys.stderr)
        result = run_once(settings, replace(options, n=emails, profile=False, scenario="mix"),
                          stack, sink, report_dir)
        share = jit_share(result)
        runs.append({"emails_per_s": result["emails_per_s"], "jit_share": round(share, 3),
                     "jvm_cpu_s": {name: result["cpu_s"].get(name) for name in sorted(JVMS)},
                     "jit_cpu_s": result.get("jit_cpu_s", {})})
        print(f"  {result['emails_per_s']} emails/s; the JVMs spent {share:.0%} of their CPU "
              "compiling", file=sys.stderr)
        if share <= WARM_JIT_SHARE:
            break
    if not runs:
        return None
    return {"emails": emails, "runs": runs, "emails_per_s": runs[-1]["emails_per_s"],
            "jit_share_limit": WARM_JIT_SHARE, "stack_started": stack_started}


def jit_share(result: dict[str, Any]) -> float:
    """What share of the JVMs' CPU in a run went to their JIT compilers."""
    cpu = sum(result["cpu_s"].get(name, 0.0) for name in JVMS)
    return sum(result.get("jit_cpu_s", {}).values()) / cpu if cpu > 0 else 0.0


def _warm_up(publisher: Publisher, sink: Sink, run: str, partitions: int, timeout_s: float,
             workers: Workers) -> set[str]:
    """One email of each transactional type first, not measured: a production worker is
    warm (producer metadata for every topic, connections, first-call code paths cost about a
    second that the case study's numbers never include)."""
    warm = build({event_type: 1 for event_type in DAILY_MIX if event_type != "marketing"},
                 f"{run}w", partitions)
    publish(publisher, warm.events)
    keys = set(warm.expected)
    deadline_poll(lambda: keys <= set(sink.keys()), timeout_s,
                   "warm-up emails at the sink", alive=workers.check_alive)
    return keys


def _publish_scenario(publisher: Publisher, options: Options, work: Workload,
                      sink: Sink, cpu: list[float]) -> list[float]:
    if options.scenario != "backlog":
        return publish(publisher, work.events, cpu)
    # the campaign first; the critical mail once the backlog is really draining
    first = publish(publisher, work.events[:1], cpu)
    draining = min(BACKLOG_DRAINING, len(work.profiles) // 5)
    deadline_poll(lambda: len(sink.keys()) >= draining, options.timeout_s,
                   f"first {draining} marketing emails at the sink")
    return first + publish(publisher, work.events[1:], cpu)


def _wait_for_sink(work: Workload, sink: Sink, timeout_s: float,
                   workers: Workers) -> list[tuple[str, float]]:
    expected, missing = set(work.expected), set(work.expected)

    def all_arrived() -> bool:
        """Only what arrived since the last poll is looked at: a set of every key so far,
        four times a second, kept the benchmark at a quarter of a core in a
        1,000,000-recipient run."""
        missing.difference_update(sink.fresh_keys())
        return not missing

    try:
        deadline_poll(all_arrived, timeout_s, f"{len(expected)} emails at the sink",
                       every_s=0.25, alive=workers.check_alive)
    except BenchError as err:
        arrived = expected & set(sink.keys())
        raise BenchError(f"{err}: {len(arrived)} of {len(expected)} arrived") from err
    return sink.receipts()


def drop_ledgers(settings: Settings) -> None:
    delete_topics(settings.kafka_bootstrap,
                  [ledger_changelog(settings.app_id, p) for p in Priority])


def run_bench(settings: Settings, options: Options) -> dict[str, Any]:
    options = replace(options, workers=options.workers or process_count(settings))
    stack = LocalStack.from_settings(settings)
    started = stack.up(log=lambda line: print(line, file=sys.stderr))
    report_dir = options.report_dir or settings.home / "bench" / time.strftime("%Y%m%d-%H%M%S")
    report_dir.mkdir(parents=True, exist_ok=True)
    sink = start_sink(options.provider,
                      dump_root(settings.home / "bench" / "sink", options.n * MESSAGE_BYTES_MAX),
                      options.smtp_host, options.smtp_port)
    peer_dir = peer.prepare(options.peer, settings.home / "bench") if options.peer else None
    peer_runs: list[dict[str, Any]] = []
    warm_up: dict[str, Any] | None = None
    try:
        # JVMs this invocation started, or running but maybe just started: warm them first
        warm_up = _warm_stack(settings, options, stack, sink, report_dir,
                              any(started.values()))
        runs = []
        for index in range(options.repeat):
            print(f"run {index + 1}/{options.repeat}: {options.scenario}, "
                  f"provider {options.provider}, {options.workers} worker(s)", file=sys.stderr)
            result = run_once(settings, options, stack, sink, report_dir)
            print(f"  {result['emails_per_s']} emails/s, {result['lost']} lost, "
                  f"{result['duplicates']} duplicates", file=sys.stderr)
            runs.append(result)
            for workers in (PEER_WORKERS[options.scenario] if peer_dir else ()):
                peer_runs.append(peer.summary(peer.run(peer_dir, options.scenario, result["n"],
                                                       workers)))
                print(f"  peer x{workers}: {peer_runs[-1]['emails_per_s']} emails/s",
                      file=sys.stderr)
    finally:
        sink.stop()
    result = median_of(runs)
    if warm_up:
        result["stack_warm_up"] = warm_up
    if peer_runs:
        result["peer_runs"] = peer_runs
        result["versus_peer"] = peer.compare(result, peer_runs)
    if options.limits:
        from bench.limits import kafka_passthrough_limit, smtp_sink_limit
        size = result.get("message_bytes") or 12_000  # the run's own mean
        limits: dict[str, Any] = {"kafka": kafka_passthrough_limit(settings.kafka_bootstrap,
                                                                   result["n"], 1_000)}
        if options.provider == "smtp" and not options.smtp_host:
            limits["smtp_sink"] = smtp_sink_limit(dump_root(settings.home / "bench" / "sink-raw",
                                                            result["n"] * size),
                                                  result["n"], size)
            limits["fraction_of_smtp_sink"] = round(
                result["emails_per_s"] / limits["smtp_sink"]["messages_per_s"], 3)
        if options.provider in ("sendgrid", "mailgun"):
            from bench.batch_floor import batch_floor, opensearch_us_per_email
            from bench.providers import batch_api_alone
            alone = asyncio.run(batch_api_alone(options.provider, min(result["n"], 100_000)))
            limits["batch_api_alone"] = {name: round(value, 1) for name, value in alone.items()}
            limits["fraction_of_batch_api"] = round(
                result["emails_per_s"] / alone["recipients_per_s"], 3)
            limits["batch_floor"] = batch_floor(alone, opensearch_us_per_email(result),
                                                os.cpu_count() or 1)
        limits["fraction_of_kafka_passthrough"] = round(
            result["emails_per_s"] / limits["kafka"]["passthrough_per_s"], 3)
        result["limits"] = limits
    if options.tracking:
        from bench.sinks import free_port
        from bench.tracking import tracking_load
        load = tracking_load(settings, free_port(), total=max(20_000, 2 * result["n"]),
                             log_dir=report_dir)
        load["times_email_rate"] = round(load["requests_per_s"] / result["emails_per_s"], 2)
        result["tracking"] = load
    result["machine"] = machine()
    result["report_dir"] = str(report_dir)
    from bench.profile_summary import profile_files, summarize
    runs = {str(r.get("run")) for r in [result, *result.get("runs", [])]}
    profiles = profile_files(report_dir, runs)
    if profiles:
        result["profile_top"] = {path.stem: summarize(path, top=20) for path in profiles}
    return result
