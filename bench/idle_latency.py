"""Latency of lone password resets on an idle worker: one every 0.3 s, publish -> smtp-sink.

    .venv/bin/python -m bench.idle_latency [--n 25]

Needs the local stack running (``flowmail stack up``). The first emails after a worker starts
pay its warm-up (producer metadata, first calls); the report shows them apart.
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import replace

from bench.e2e import drop_ledgers
from bench.report import emit
from bench.sinks import SmtpSink
from bench.summary import percentiles
from bench.workers import Workers
from core.settings import load_settings
from flowmail.publisher import Publisher
from flowmail.samples import password_reset_requested
from processors.keys import idempotency_key
from streams.topic_admin import TopicAdmin
from streams.topics import topic_specs

WARM_UP = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=25)
    parser.add_argument("--json")
    args = parser.parse_args()
    settings = load_settings()
    run = uuid.uuid4().hex[:6]
    bench = replace(settings, app_id=f"flowmail-idle-{run}")
    TopicAdmin(bench.kafka_bootstrap, bench.replication_factor).apply(topic_specs(bench))
    sink = SmtpSink.start(settings.home / "bench" / "idle-sink")
    workers = Workers(bench, 1, "smtp", {**sink.worker_env(),
                                         "FLOWMAIL_PROVIDER_RATES": "smtp=100000"},
                      settings.home / "bench" / f"idle-logs-{run}")
    try:
        workers.start()
        published: list[tuple[str, float]] = []
        with Publisher(bench.kafka_bootstrap) as publisher:
            for index in range(args.n):
                event = password_reset_requested(index)
                event["user"]["email"] = f"idle{index}.{run}@bench.example"
                key = idempotency_key(event["event_id"], "password_reset", event["user"]["email"])
                published.append((key, time.time()))
                publisher.publish("user.password_reset_requested", event)
                publisher.flush()
                time.sleep(0.3)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(sink.receipts()) < args.n:
            time.sleep(0.1)
        accepted = dict(sink.receipts())
    finally:
        workers.stop()
        sink.stop()
        drop_ledgers(bench)
    latency = [(accepted[key] - at) * 1000 for key, at in published if key in accepted]
    emit({"n": args.n, "received": len(latency),
          "warm_up_ms": [round(x, 1) for x in latency[:WARM_UP]],
          "latency_ms": percentiles(latency[WARM_UP:])}, args.json)


if __name__ == "__main__":
    main()
