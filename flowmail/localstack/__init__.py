"""The local stack: real Kafka (KRaft), real OpenSearch and an SMTP mail catcher on 127.0.0.1,
and on request (or when FLOWMAIL_SCHEMA_REGISTRY_URL points at 127.0.0.1) a Schema Registry.

``up`` is safe to run twice: it starts only what is not running and waits until each service
answers. ``down`` stops only the processes whose pid files it wrote.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlparse

from core.settings import Settings
from flowmail.localstack.catcher import CatcherService
from flowmail.localstack.jvm import java_home
from flowmail.localstack.kafka import KafkaService
from flowmail.localstack.opensearch import OpenSearchService
from flowmail.localstack.procs import Managed, StackError, port_in_use, stop
from flowmail.localstack.registry import RegistryService

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
    registry: RegistryService
    with_registry: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, with_registry: bool = False) -> LocalStack:
        root = settings.home / "stack"
        jdk = java_home(settings.java_home)
        kafka_port = int(settings.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])
        os_port = urlparse(settings.opensearch_url).port or 9200
        registry_url = urlparse(settings.schema_registry_url)
        local_registry = registry_url.hostname in {"127.0.0.1", "localhost"}
        registry_port = (registry_url.port or settings.schema_registry_port if local_registry
                         else settings.schema_registry_port)
        return cls(KafkaService(root / "kafka", settings.cache_dir, kafka_port, jdk),
                   OpenSearchService(root / "opensearch", settings.cache_dir, os_port, jdk),
                   CatcherService(root, settings.outbox_dir, settings.smtp_port),
                   RegistryService(root / "registry", settings.cache_dir, registry_port, jdk),
                   with_registry or local_registry)

    @property
    def services(self) -> list[Service]:
        core: list[Service] = [self.kafka, self.opensearch, self.catcher]
        return [*core, self.registry] if self.with_registry else core

    def up(self, log: callable = print) -> dict[str, bool | None]:
        """Fetch, start everything not running, then wait for each; returns name -> started
        (None: a healthy service flowmail did not start already serves that port)."""
        began = time.monotonic()
        for service in self.services:
            service.fetch()
        started: dict[str, bool | None] = {}
        starting = time.monotonic()
        for service in self.services:  # JVM warm-ups overlap: start all, then wait
            if not service.proc.running() and port_in_use(service.port) and service.healthy():
                started[service.proc.name] = None  # someone else's, healthy: use it as it is
            else:
                started[service.proc.name] = service.start()
        for service in self.services:
            if started[service.proc.name] is not None:
                service.wait()
                self.timings[service.proc.name] = time.monotonic() - starting
            verb = {True: "started", False: "already running",
                    None: f"already serving on port {service.port} (not started here)"}[
                started[service.proc.name]]
            took = (f" (healthy {self.timings[service.proc.name]:.1f}s after start)"
                    if started[service.proc.name] else "")
            log(f"{service.proc.name:12} {verb}, healthy{took}")
        if self.with_registry:
            self._import_schemas(log)
        log(f"stack ready in {time.monotonic() - began:.1f}s")
        return started

    def _import_schemas(self, log: callable) -> None:
        """The registry keeps schemas in memory: the file's versions, with their ids."""
        from core.avro import SchemaRegistry
        from core.settings import SCHEMA_DIR
        from flowmail.schema_import import import_file_ids
        result = import_file_ids(self.registry.url, SchemaRegistry(SCHEMA_DIR / "registry.json"))
        rss = self.registry.rss_mb()
        log(f"{'registry':12} {self.registry.url}: {len(result.imported)} schema versions "
            f"imported, {len(result.present)} already there"
            + (f"; resident memory {rss:.0f} MB" if rss else ""))

    def down(self, log: callable = print) -> None:
        extra = [] if self.with_registry else [self.registry]  # started by an earlier `up`
        for service in [*extra, *reversed(self.services)]:
            if service is self.registry and not service.proc.running() and extra:
                continue
            log(f"{service.proc.name:12} {'stopped' if stop(service.proc) else 'not running'}")

    def status(self) -> dict[str, str]:
        report = {}
        for service in self.services:
            if not service.proc.running():
                report[service.proc.name] = "down"
            else:
                report[service.proc.name] = "healthy" if service.healthy() else "starting/unhealthy"
        return report
