"""Start-up races: a brand-new Kafka (empty data dir) and, at once, a worker and the demo.

Right after its first start the broker answers metadata before its group coordinator has
loaded (NOT_COORDINATOR); the worker's topic plan and group positioning and the demo's topic
plan must wait for it, not die.
"""

from __future__ import annotations

from tests.integration.private_broker import private_broker


def test_worker_and_demo_started_with_a_brand_new_broker(stack, settings, tmp_path):
    with private_broker(tmp_path, settings, start=False,
                        FLOWMAIL_INDEX_PREFIX="fresh-broker-events") as fresh:
        fresh.stack.kafka.start()  # not waited for: the worker and the demo meet it starting
        worker_port = fresh.start_worker("--new-group-starts-at", "latest",
                                         app_id="flowmail-fresh-worker")
        demo = fresh.cli("demo", "--count", "8", timeout_s=600)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "emails sent:        8 in" in demo.stdout
        assert "(8 documents from this run" in demo.stdout
        fresh.wait_all_ready(120)
        [(_, port, log)] = fresh.workers
        assert port == worker_port
    assert "Traceback" not in log.read_text()
