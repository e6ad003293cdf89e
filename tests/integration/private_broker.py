"""A brand-new Kafka (empty data dir, own ports) and mail catcher for one test, beside the
session's stack; OpenSearch is the session's (the stack reuses a healthy one)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import Settings, load_settings
from flowmail.localstack import LocalStack
from flowmail.localstack.procs import stop
from tests.integration.helpers import free_port, poll, workers_ready


@dataclass
class PrivateBroker:
    env: dict[str, str]
    settings: Settings
    stack: LocalStack
    workers: list[tuple[subprocess.Popen[bytes], int, Path]] = field(default_factory=list)

    def start_worker(self, *args: str, app_id: str | None = None) -> int:
        """A one-process `flowmail worker` on this broker (unless ``--processes`` is given);
        returns its web port."""
        if "--processes" not in args:
            args = ("--processes", "1", *args)
        port = free_port(pair=True)
        log_path = self.settings.home / f"worker-{port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "FLOWMAIL_WEB_PORT": str(port)}
        if app_id:
            env["FLOWMAIL_APP_ID"] = app_id
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "flowmail", "worker", *args],
                                       stdout=log, stderr=subprocess.STDOUT, env=env)
        self.workers.append((process, port, log_path))
        return port

    def ready(self, port: int) -> bool:
        for process, worker_port, log_path in self.workers:
            if worker_port == port:
                assert process.poll() is None, log_path.read_text()[-3000:]
        return workers_ready(port, 1)

    def wait_all_ready(self, timeout_s: float = 180) -> None:
        ports = [port for _, port, _ in self.workers]
        poll(lambda: all(self.ready(p) for p in ports), f"{len(ports)} workers ready",
             timeout_s)

    def cli(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """A `flowmail` command on this broker (its own web port, should it start a worker)."""
        return subprocess.run([sys.executable, "-m", "flowmail", *args],
                              env={**self.env, "FLOWMAIL_WEB_PORT": str(free_port())},
                              capture_output=True, text=True, timeout=timeout_s)


@contextmanager
def private_broker(tmp_path: Path, session: Settings, start: bool = True,
                   **env: str) -> Iterator[PrivateBroker]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLOWMAIL_")}
    base.update({"FLOWMAIL_HOME": str(tmp_path / "home"),
                 "FLOWMAIL_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port(pair=True)}",
                 "FLOWMAIL_OPENSEARCH_URL": session.opensearch_url,
                 "FLOWMAIL_SMTP_PORT": str(free_port()), "FLOWMAIL_SINK_BATCH_SECONDS": "0.2",
                 "FLOWMAIL_JAVA_HOME": session.java_home,
                 "FLOWMAIL_PSEUDONYM_SECRET": "private-broker-pseudonym-secret-0123456789",
                 "FLOWMAIL_UNSUBSCRIBE_SECRET": "private-broker-unsubscribe-secret-012345678",
                 **env})
    settings = load_settings(base)
    local = LocalStack.from_settings(settings)
    local.kafka.fetch()
    assert not (local.kafka.root / "data").exists()
    broker = PrivateBroker(base, settings, local)
    if start:
        local.up(log=lambda _: None)
    try:
        yield broker
    finally:
        for process, _, _ in broker.workers:
            process.terminate()
        for process, _, _ in broker.workers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        for service in (local.catcher, local.kafka):
            stop(service.proc)
