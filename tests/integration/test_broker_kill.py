"""kill -9 of the broker in the middle of a run, then its restart: every email arrives once
the broker is back, duplicates are counted and reported (test-artifacts/broker-kill.json).

A private broker (its own data directory), so the session's stack is not touched. The worker
is `flowmail worker --processes 1`; it is not restarted: its Kafka clients wait for the
broker and carry on.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from flowmail.localstack.procs import port_in_use
from flowmail.publisher import Publisher
from flowmail.samples import SAMPLES
from processors.keys import idempotency_key
from tests.integration.helpers import outbox, poll
from tests.integration.private_broker import private_broker

EMAILS = 1200
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def test_broker_kill_9_and_restart_loses_nothing(stack, settings, tmp_path):
    with private_broker(tmp_path, settings, FLOWMAIL_APP_ID="flowmail-broker-kill",
                        FLOWMAIL_INDEX_PREFIX="broker-kill-events") as broker:
        bootstrap = broker.settings.kafka_bootstrap
        broker.start_worker()
        broker.wait_all_ready()
        events = [SAMPLES["shipment.updated"](i) for i in range(EMAILS)]
        keys = {idempotency_key(e["event_id"], "shipping_update", e["email"]) for e in events}
        with Publisher(bootstrap) as publisher:
            for event in events:
                publisher.publish("shipment.updated", event)

        def received() -> dict[str, list[str]]:
            return {k: v for k, v in outbox(broker.settings.outbox_dir).items() if k in keys}

        poll(lambda: len(received()) >= EMAILS // 4, "a quarter of the emails", 180)
        kafka = broker.stack.kafka
        pid = kafka.proc.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        # the process has let go of its memory before its sockets: wait for both
        poll(lambda: not kafka.proc.running() and not port_in_use(kafka.port),
             "the broker gone", 30)
        at_kill = len(received())
        down_at = time.monotonic()
        kafka.start()  # the same data directory: what the broker had written is still there
        kafka.wait()
        back_after = time.monotonic() - down_at
        worker, _, log_path = broker.workers[0]
        poll(lambda: len(received()) == EMAILS, "every email after the broker's restart", 300,
             every_s=1)
        assert worker.poll() is None, f"the worker exited; see {log_path}"
        counts = received()
        duplicates = sum(len(paths) - 1 for paths in counts.values())
        report = {"emails": EMAILS, "received_at_kill": at_kill,
                  "lost": EMAILS - len(counts), "duplicates": duplicates,
                  "broker_back_after_s": round(back_after, 1),
                  "all_received_after_restart_s": round(time.monotonic() - down_at, 1)}
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "broker-kill.json").write_text(json.dumps(report, indent=2))
        print(f"\nbroker kill: {report}")
        assert report["lost"] == 0
        # at least once: a send whose ledger entry the dead broker had not acknowledged may
        # go out again; bounded so a regression shows
        assert duplicates <= EMAILS * 0.05, report
