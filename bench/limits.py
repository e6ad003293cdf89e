"""Raw limits measured in the same run as flowmail, on the same machine and broker:
the SMTP sink's own capacity (postfix ``smtp-source`` against a fresh ``smtp-sink``) and a
bare confluent-kafka consume -> produce pass-through, the least any Kafka stage must do."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from bench.kafka_io import delete_topics, produce_waiting
from bench.sinks import SMTP_SOURCE, SmtpSink
from core.kafka_config import admin_config, client_config

RAW_SMTP_PASSES = 3


def smtp_sink_limit(dump_dir: Path, n: int, size_bytes: int, sessions: int = 8,
                    passes: int = RAW_SMTP_PASSES) -> dict[str, Any]:
    """Messages per second smtp-source pushes through a fresh smtp-sink (dumping, as in the
    run) with ``sessions`` parallel connections, one message per transaction: the best of
    ``passes`` passes. One pass of a mix invocation once measured 1,125/s where passes
    before and after it gave 4,000-5,000/s on that machine (docs/performance.md, fifteenth
    session); the best of three is the sink's capacity, and the harder line to reach."""
    rates = [_smtp_sink_pass(dump_dir / f"pass-{number}", n, size_bytes, sessions)
             for number in range(max(1, passes))]
    best = max(rates)
    return {"messages": n, "size_bytes": size_bytes, "sessions": sessions,
            "seconds": round(n / best, 2), "messages_per_s": round(best),
            "passes_per_s": [round(rate) for rate in rates]}


def _smtp_sink_pass(dump_dir: Path, n: int, size_bytes: int, sessions: int) -> float:
    dump_dir.mkdir(parents=True, exist_ok=True)
    sink = SmtpSink.start(dump_dir)
    try:
        began = time.perf_counter()
        subprocess.run([SMTP_SOURCE, "-s", str(sessions), "-m", str(n), "-l", str(size_bytes),
                        "-f", "bench@bench.example", "-t", "sink@bench.example",
                        f"127.0.0.1:{sink.port}"], check=True, capture_output=True, timeout=600)
        seconds = time.perf_counter() - began
    finally:
        sink.stop()  # and its dumps
    return n / seconds


def kafka_passthrough_limit(bootstrap: str, n: int, size_bytes: int, partitions: int = 3
                            ) -> dict[str, float]:
    """Produce ``n`` records (acks=all, idempotent, as flowmail's producers), then time one
    consumer group reading them and producing each to a second topic, flushed at the end."""
    admin = AdminClient(admin_config(bootstrap))
    run = uuid.uuid4().hex[:8]
    source, target = f"bench.raw-in.{run}", f"bench.raw-out.{run}"
    for future in admin.create_topics([NewTopic(t, partitions, 1)
                                       for t in (source, target)]).values():
        future.result()
    config = client_config(bootstrap) | {"acks": "all", "enable.idempotence": True,
              "linger.ms": 5, "compression.type": "lz4"}
    try:
        payload = b"x" * size_bytes
        producer = Producer(config)
        began = time.perf_counter()
        for i in range(n):
            produce_waiting(producer, source, str(i).encode(), payload)
        producer.flush(60)
        produce_s = time.perf_counter() - began
        consumer = Consumer(client_config(bootstrap) | {"group.id": f"bench-raw-{run}",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe([source])
        forward = Producer(config)
        seen, began = 0, time.perf_counter()
        deadline = time.monotonic() + 300
        while seen < n and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1.0):
                if message.error():
                    continue
                produce_waiting(forward, target, message.key(), message.value())
                seen += 1
        consumer.commit(asynchronous=False)
        forward.flush(60)
        pass_s = time.perf_counter() - began
        consumer.close()
    finally:
        delete_topics(bootstrap, [source, target])
    return {"records": n, "size_bytes": size_bytes, "produce_per_s": round(n / produce_s),
            "passthrough_per_s": round(seen / pass_s), "passed": seen}
