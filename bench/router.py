"""Router hot path on one core: decode (Avro) + route (pure) + encode the commands.

    .venv/bin/python -m bench.router [--n 20000] [--json out.json]

Reports events/s and per-event latency percentiles; no Kafka involved, so this is the
ceiling of one router process before network and broker costs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import time

from bench.report import emit
from core.avro import registry
from core.catalogue import BY_TOPIC, CATALOGUE
from flowmail.samples import SAMPLES
from processors.routing import route
from streams.topics import COMMAND_SUBJECT

# the case study's daily mix without marketing (campaign fan-out is measured separately)
MIX = {e.topic: e.daily_volume for e in CATALOGUE if e.recipient and e.daily_volume}


def payloads(n: int) -> list[tuple[str, bytes]]:
    total = sum(MIX.values())
    now = dt.datetime.now(dt.UTC)
    out = []
    for topic, share in MIX.items():
        for i in range(max(1, n * share // total)):
            out.append((topic, registry().encode(BY_TOPIC[topic].subject, SAMPLES[topic](i, now))))
    return out


def run(n: int) -> dict[str, object]:
    schemas = registry()
    events = payloads(n)
    timings = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    for topic, payload in events:
        t0 = time.perf_counter()
        now = int(time.time() * 1000)
        for command in route(topic, schemas.decode(BY_TOPIC[topic].subject, payload), now, now):
            schemas.encode(COMMAND_SUBJECT, command.to_record(), check=False)
        timings.append(time.perf_counter() - t0)
    wall = time.perf_counter() - started
    timings.sort()
    pct = lambda p: round(timings[int(p * (len(timings) - 1))] * 1e6, 1)  # noqa: E731
    return {"events": len(events), "wall_s": round(wall, 3),
            "cpu_s": round(time.process_time() - cpu_started, 3),
            "events_per_s": round(len(events) / wall), "latency_us": {
                "p50": pct(0.5), "p95": pct(0.95), "p99": pct(0.99), "max": pct(1.0),
                "mean": round(statistics.fmean(timings) * 1e6, 1)},
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--json", help="write the result here")
    args = parser.parse_args()
    result = run(args.n)
    emit(result, args.json)


if __name__ == "__main__":
    main()
