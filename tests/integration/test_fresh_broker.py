"""Start-up races: a brand-new Kafka (empty data dir) and, at once, a worker and the demo.

Right after its first start the broker answers metadata before its group coordinator has
loaded (NOT_COORDINATOR); the worker's group positioning and the demo's topic plan must wait
for it, not die. OpenSearch is the session's (the stack reuses a healthy one on its port).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import requests

from flowmail.localstack import LocalStack
from flowmail.localstack.procs import stop
from flowmail.settings import load_settings
from tests.integration.helpers import poll


def _free_pair() -> int:
    """A port P with P+1 free too (Kafka's broker and controller)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two free neighbouring ports")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_worker_and_demo_started_with_a_brand_new_broker(stack, settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWMAIL_")}
    env.update({"FLOWMAIL_HOME": str(tmp_path / "home"),
                "FLOWMAIL_KAFKA_BOOTSTRAP": f"127.0.0.1:{_free_pair()}",
                "FLOWMAIL_OPENSEARCH_URL": settings.opensearch_url,
                "FLOWMAIL_INDEX_PREFIX": "fresh-broker-events",
                "FLOWMAIL_SMTP_PORT": str(_free_port()), "FLOWMAIL_SINK_BATCH_SECONDS": "0.2",
                "FLOWMAIL_JAVA_HOME": settings.java_home})
    fresh = load_settings(env)
    local = LocalStack.from_settings(fresh)
    local.kafka.fetch()
    assert not (local.kafka.root / "data").exists()
    local.kafka.start()  # not waited for: the worker and the demo meet it while it starts
    worker_port = _free_port()
    worker_log = tmp_path / "worker.log"
    with open(worker_log, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flowmail", "worker", "--new-group-starts-at", "latest"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**env, "FLOWMAIL_WEB_PORT": str(worker_port),
                 "FLOWMAIL_APP_ID": "flowmail-fresh-worker"})
    try:
        demo = subprocess.run([sys.executable, "-m", "flowmail", "demo", "--count", "8"],
                              env={**env, "FLOWMAIL_WEB_PORT": str(_free_port())},
                              capture_output=True, text=True, timeout=600)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        assert "emails sent:        8 in" in demo.stdout
        assert "(8 documents from this run" in demo.stdout

        def worker_ready() -> bool:
            assert worker.poll() is None, worker_log.read_text()[-3000:]
            try:
                return requests.get(f"http://127.0.0.1:{worker_port}/ready", timeout=2).ok
            except requests.RequestException:
                return False

        poll(worker_ready, "the worker started with the new broker to be ready", 120)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        for service in (local.catcher, local.kafka):
            stop(service.proc)
    assert "Traceback" not in worker_log.read_text()
