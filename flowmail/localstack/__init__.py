"""The local stack: real Kafka (KRaft), real OpenSearch and an SMTP mail catcher on 127.0.0.1.

``up`` is safe to run twice: it starts only what is not running and waits until each service
answers. ``down`` stops only the processes whose pid files it wrote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

from core.settings import Settings
from flowmail.localstack.catcher import CatcherService
from flowmail.localstack.jvm import java_home
from flowmail.localstack.kafka import KafkaService
from flowmail.localstack.opensearch import OpenSearchService
from flowmail.localstack.procs import Managed, StackError, port_in_use, stop

__all__ = ["LocalStack", "StackError"]


class Service(Protocol):
    proc: Managed
    port: int

    def fetch(self) -> None: ...
    def start(self) -> bool: ...
    def healthy(self) -> bool: ...
    def wait(self, timeout_s: float = ...) -> None: ...


@dataclass
class LocalStack:
    kafka: KafkaService
    opensearch: OpenSearchService
    catcher: CatcherService

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStack:
        root = settings.home / "stack"
        jdk = java_home(settings.java_home)
        kafka_port = int(settings.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])
        os_port = urlparse(settings.opensearch_url).port or 9200
        return cls(KafkaService(root / "kafka", settings.cache_dir, kafka_port, jdk),
                   OpenSearchService(root / "opensearch", settings.cache_dir, os_port, jdk),
                   CatcherService(root, settings.outbox_dir, settings.smtp_port))

    @property
    def services(self) -> list[Service]:
        return [self.kafka, self.opensearch, self.catcher]

    def up(self, log: callable = print) -> dict[str, bool | None]:
        """Fetch, start everything not running, then wait for each; returns name -> started
        (None: a healthy service flowmail did not start already serves that port)."""
        began = time.monotonic()
        for service in self.services:
            service.fetch()
        started: dict[str, bool | None] = {}
        for service in self.services:  # JVM warm-ups overlap: start all, then wait
            if not service.proc.running() and port_in_use(service.port) and service.healthy():
                started[service.proc.name] = None  # someone else's, healthy: use it as it is
            else:
                started[service.proc.name] = service.start()
        for service in self.services:
            if started[service.proc.name] is not None:
                service.wait()
            verb = {True: "started", False: "already running",
                    None: f"already serving on port {service.port} (not started here)"}[
                started[service.proc.name]]
            log(f"{service.proc.name:12} {verb}, healthy")
        log(f"stack ready in {time.monotonic() - began:.1f}s")
        return started

    def down(self, log: callable = print) -> None:
        for service in reversed(self.services):
            log(f"{service.proc.name:12} {'stopped' if stop(service.proc) else 'not running'}")

    def status(self) -> dict[str, str]:
        report = {}
        for service in self.services:
            if not service.proc.running():
                report[service.proc.name] = "down"
            else:
                report[service.proc.name] = "healthy" if service.healthy() else "starting/unhealthy"
        return report
