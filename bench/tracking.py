"""Open and click tracking under load: `flowmail webhooks` as shipped, real HTTP requests with
signed ids (half pixel fetches, half clicks), every one written to email.delivery before its
answer. Run by ``flowmail bench --tracking`` after the email runs, so the rate is compared
with the email rate of the same invocation (issue: at least 2x)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import requests
from confluent_kafka import Consumer, TopicPartition

from bench.procstats import ProcessStats
from bench.summary import percentiles
from bench.workers import deadline_poll
from core.kafka_config import client_config
from core.secrets import with_secrets
from core.settings import Settings
from processors.tracking import sign
from streams.topics import DELIVERY

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17.1"


def end_offsets_sum(bootstrap: str, topic: str) -> int:
    consumer = Consumer(client_config(bootstrap, **{"group.id": "flowmail-bench-offsets"}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in partitions)
    finally:
        consumer.close()


def tracked_urls(secret: str, base: str, count: int) -> list[str]:
    """``count`` recipients of one campaign variant: a pixel and a link each."""
    key = secret.split(",")[0].strip().encode()
    context = {"s": "shop-bench", "t": "marketing_campaign", "p": "marketing",
               "c": "bench-campaign", "v": "A"}
    pixel_token = sign(key, context)
    link_token = sign(key, {**context, "u": "https://shop.example/sale?utm=bench"})
    urls = []
    for index in range(count):
        recipient = sign(key, {"k": f"{index:040x}", "r": f"{index:032x}", "d": "example.org"})
        urls += [f"{base}/t/o/{pixel_token}/{recipient}.gif",
                 f"{base}/t/c/{link_token}/{recipient}"]
    return urls


async def _load(urls: list[str], total: int, concurrency: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    next_index = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers={"User-Agent": BROWSER}
                                     ) as session:
        async def client() -> None:
            nonlocal next_index, failures
            while next_index < total:
                url = urls[next_index % len(urls)]
                next_index += 1
                began = time.perf_counter()
                async with session.get(url, allow_redirects=False) as answer:
                    await answer.read()
                    if answer.status not in (200, 302):
                        failures += 1
                latencies.append((time.perf_counter() - began) * 1000)

        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, failures


def tracking_load(settings: Settings, port: int, total: int = 30_000, concurrency: int = 64,
                  log_dir: Path | None = None) -> dict[str, Any]:
    """Start the service, warm it up, send ``total`` requests, count what reached Kafka."""
    settings = with_secrets(settings)  # the service's own (generated for the local stack)
    env = {**os.environ, "FLOWMAIL_WEBHOOK_PORT": str(port),
           "FLOWMAIL_TRACKING_SECRET": settings.tracking_secret,
           "FLOWMAIL_PSEUDONYM_SECRET": settings.pseudonym_secret,
           "FLOWMAIL_UNSUBSCRIBE_SECRET": settings.unsubscribe_secret}
    log = open((log_dir or settings.home) / "tracking-service.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "flowmail", "webhooks"], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"flowmail webhooks exited with {process.returncode}")
            try:
                return requests.get(f"{base}/ready", timeout=1).ok
            except requests.RequestException:
                return False

        deadline_poll(ready, 90, "the tracking service")
        urls = tracked_urls(settings.tracking_secret, base, 5_000)
        asyncio.run(_load(urls, 2_000, concurrency))  # warm-up: connections, caches
        before = end_offsets_sum(settings.kafka_bootstrap, DELIVERY)
        stats = ProcessStats({"webhooks": process.pid}).start()
        began = time.perf_counter()
        latencies, failures = asyncio.run(_load(urls, total, concurrency))
        seconds = time.perf_counter() - began
        cpu = stats.stop()["webhooks"]
        written = end_offsets_sum(settings.kafka_bootstrap, DELIVERY) - before
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    return {"requests": total, "concurrency": concurrency, "seconds": round(seconds, 2),
            "requests_per_s": round(total / seconds, 1), "failures": failures,
            "events_written": written, "latency_ms": percentiles(latencies),
            "service": cpu}
