"""``flowmail demo``: the whole pipeline on the local stack, end to end, with a summary."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from core.opensearch_client import http_session
from core.settings import Settings
from flowmail.localstack import LocalStack
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from processors.keys import idempotency_key
from processors.message import IDEMPOTENCY_HEADER
from streams.topic_admin import TopicAdmin
from streams.topics import topic_specs


class DemoError(RuntimeError):
    pass


KEY_HEADER = re.compile(IDEMPOTENCY_HEADER.encode() + rb":\s*([0-9a-f]{40})")


def outbox_keys(outbox: Path, seen: dict[str, str | None] | None = None) -> set[str]:
    """Idempotency keys in the outbox; ``seen`` caches files already read (the outbox grows)."""
    seen = {} if seen is None else seen
    for path in outbox.glob("*.eml"):
        if path.name not in seen:
            match = KEY_HEADER.search(path.read_bytes()[:8192])
            seen[path.name] = match.group(1).decode() if match else None
    return {key for key in seen.values() if key}


def indexed_count(settings: Settings, source_event_ids: list[str]) -> int:
    url = f"{settings.opensearch_url}/{settings.index_prefix}-*/_count"
    query = {"query": {"bool": {"filter": [{"terms": {"source_event_id": source_event_ids}},
                                           {"term": {"status": "sent"}}]}}}
    session = http_session(settings)
    try:
        session.post(f"{settings.opensearch_url}/{settings.index_prefix}-*/_refresh", timeout=10)
        answer = session.post(url, json=query, timeout=10)
    except requests.RequestException:
        return 0
    return answer.json().get("count", 0) if answer.ok else 0


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "flowmail", "worker",
                                 "--new-group-starts-at", "latest"], stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ},
                                start_new_session=True)


def wait_ready(settings: Settings, worker: subprocess.Popen[bytes], log_path: Path,
               timeout_s: float = 120.0) -> None:
    """Publish only once the worker has joined: a new group starts at the end of the topics."""
    deadline = time.monotonic() + timeout_s
    while True:
        if worker.poll() is not None:
            raise DemoError(f"worker exited ({worker.returncode}); see {log_path}")
        try:
            if requests.get(f"http://127.0.0.1:{settings.web_port}/ready", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise DemoError(f"worker not ready after {timeout_s:.0f}s; see {log_path}")
        time.sleep(0.5)


def run_demo(settings: Settings, count: int = 16, timeout_s: float = 180.0) -> dict[str, object]:
    stack = LocalStack.from_settings(settings)
    stack.up()
    for change in TopicAdmin(settings.kafka_bootstrap, settings.replication_factor).apply(
            topic_specs(settings), settings.startup_timeout_s):
        print(f"topic {change.topic}: {change.action} ({change.detail})")
    log_path = settings.home / "logs" / "demo-worker.log"
    worker = start_worker(settings, log_path)
    began = time.monotonic()
    try:
        wait_ready(settings, worker, log_path)
        events = [order_placed(i) for i in range(count)]
        with Publisher(settings.kafka_bootstrap) as publisher:
            for event in events:
                publisher.publish("order.placed", event)
        print(f"published {count} order.placed events in 8 locales")
        expected = {idempotency_key(e["event_id"], "order_confirmation", e["customer"]["email"])
                    for e in events}
        ids = [e["event_id"] for e in events]
        deadline = time.monotonic() + timeout_s
        seen: dict[str, str | None] = {}
        while True:
            delivered = expected & outbox_keys(settings.outbox_dir, seen)
            indexed = indexed_count(settings, ids)
            if len(delivered) == count and indexed == count:
                break
            if worker.poll() is not None:
                raise DemoError(f"worker exited ({worker.returncode}); see {log_path}")
            if time.monotonic() > deadline:
                raise DemoError(
                    f"after {timeout_s:.0f}s: {len(delivered)}/{count} emails in the outbox, "
                    f"{indexed}/{count} delivery events indexed; see {log_path}")
            time.sleep(0.5)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    total = http_session(settings).get(
        f"{settings.opensearch_url}/{settings.index_prefix}-*/_count", timeout=10).json()["count"]
    return {"emails_sent": len(delivered), "seconds": round(time.monotonic() - began, 1),
            "outbox": str(settings.outbox_dir), "index": f"{settings.index_prefix}-*",
            "documents_for_this_run": indexed, "documents_in_index": total}
