"""SIGKILL the worker in the middle of a run, start it again: nothing lost, duplicates counted.

Runs last (file name) because it replaces the session's worker process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import requests

from flowmail.publisher import Publisher
from flowmail.samples import SAMPLES
from processors.keys import idempotency_key
from tests.integration.helpers import poll

TOTAL = int(os.environ.get("FLOWMAIL_TEST_CRASH_EMAILS", "1500"))  # 5000 for the full check
KEY_HEADER = re.compile(rb"X-Flowmail-Idempotency-Key:\s*([0-9a-f]{40})")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class OutboxCounter:
    """Counts idempotency keys in the outbox, reading each new file once."""

    def __init__(self, outbox: Path, keys: set[str]) -> None:
        self.outbox, self.keys, self.seen, self.counts = outbox, keys, set(), Counter()

    def refresh(self) -> Counter:
        for path in self.outbox.glob("*.eml"):
            if path.name in self.seen:
                continue
            self.seen.add(path.name)
            match = KEY_HEADER.search(path.read_bytes()[:4096])
            if match and match.group(1).decode() in self.keys:
                self.counts[match.group(1).decode()] += 1
        return self.counts


def test_sigkill_mid_run_loses_nothing(worker, settings):
    events = [SAMPLES["shipment.updated"](i) for i in range(TOTAL)]
    keys = {idempotency_key(e["event_id"], "shipping_update", e["email"]) for e in events}
    counter = OutboxCounter(settings.outbox_dir, keys)
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event in events:
            publisher.publish("shipment.updated", event)
    poll(lambda: len(counter.refresh()) >= TOTAL // 3, "a third of the emails", timeout_s=120)
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=30)
    at_kill = len(counter.refresh())

    log = open(worker.log, "ab")
    worker.process = subprocess.Popen([sys.executable, "-m", "flowmail", "worker"], stdout=log,
                                      stderr=subprocess.STDOUT, env=dict(os.environ))
    poll(lambda: _ready(settings), "the restarted worker", timeout_s=120)
    started = time.monotonic()
    poll(lambda: len(counter.refresh()) == TOTAL, "every email after the restart",
         timeout_s=300, every_s=1)
    counts = counter.refresh()
    duplicates = sum(n - 1 for n in counts.values())
    ARTIFACTS.mkdir(exist_ok=True)
    report = {"emails": TOTAL, "delivered_before_kill": at_kill, "lost": TOTAL - len(counts),
              "duplicates": duplicates, "recovery_s": round(time.monotonic() - started, 1)}
    (ARTIFACTS / "crash-recovery.json").write_text(json.dumps(report, indent=2))
    print(f"\ncrash recovery: {report}")
    assert report["lost"] == 0
    # At least once: a send the provider accepted just before the kill, whose ledger write
    # the broker had not yet acknowledged, goes out again (README, "window"). Measured here:
    # 0 or 1 of 1,500. The target is zero; this bounds a regression.
    assert duplicates <= TOTAL * 0.05, report


def _ready(settings) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{settings.web_port}/ready", timeout=2).ok
    except requests.RequestException:
        return False
