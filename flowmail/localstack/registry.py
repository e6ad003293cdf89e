"""A local Schema Registry: Apicurio Registry 2.4.2 (in-memory H2), built from Maven Central.

Maven Central has Apicurio's application module but not a runnable build of it, so
``deploy/schema-registry`` runs the Quarkus build over it once (a few minutes, cached under
the stack's cache folder); the result starts in seconds. Its Confluent-compatible API is at
``/apis/ccompat/v7``. Storage is in memory: ``up`` imports the repo's schema versions under
their fixed ids each time it starts one (flowmail/schema_import.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import requests

from core.settings import PROJECT_ROOT
from flowmail.localstack.procs import (
    Managed,
    StackError,
    require_free_ports,
    run_checked,
    spawn,
    wait_until,
)

SOURCES = PROJECT_ROOT / "deploy" / "schema-registry"
RUNNER = "flowmail-schema-registry-2.4.2-runner.jar"
CCOMPAT = "/apis/ccompat/v7"
JVM_FLAGS = ["-Xms64m", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]


def sources_digest() -> str:
    """A digest of the build's sources: a changed pom or class rebuilds."""
    digest = hashlib.sha256()
    for path in sorted(p for p in SOURCES.rglob("*") if p.is_file() and "target" not in p.parts):
        digest.update(str(path.relative_to(SOURCES)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class RegistryService:
    """Build once, start, health-check; state under ``root``, the build under ``cache``."""

    def __init__(self, root: Path, cache: Path, port: int, jdk: Path) -> None:
        self.root, self.cache, self.port, self.jdk = root, cache, port, jdk
        self.build_dir = cache / "schema-registry-build"
        self.app = self.build_dir / "app" / "target"
        self.proc = Managed("registry", root / "registry.pid", RUNNER,
                            root / "logs" / "registry.out")

    @property
    def url(self) -> str:
        """What FLOWMAIL_SCHEMA_REGISTRY_URL points at."""
        return f"http://127.0.0.1:{self.port}{CCOMPAT}"

    def fetch(self) -> None:
        marker = self.build_dir / ".complete"
        digest = sources_digest()
        if marker.exists() and marker.read_text() == digest and (self.app / RUNNER).exists():
            return
        mvn = shutil.which("mvn")
        if mvn is None:
            raise StackError("Maven (mvn) not found on PATH: install it (apt-get install maven); "
                             "the schema registry is built from Maven Central artifacts")
        if self.build_dir.exists():
            shutil.rmtree(self.build_dir)
        shutil.copytree(SOURCES, self.build_dir)
        env = {**os.environ, "JAVA_HOME": str(self.jdk)}
        run_checked([mvn, "-B", "-q", f"-Dmaven.repo.local={self.cache / 'm2'}", "-f",
                     str(self.build_dir / "pom.xml"), "install", "-DskipTests"],
                    "building the schema registry (mvn install)",
                    self.root / "logs" / "mvn-registry.log", env)
        marker.write_text(digest)

    def start(self) -> bool:
        if self.proc.running():
            return False
        require_free_ports("registry", [self.port])
        env = {**os.environ, "HTTP_PORT": str(self.port), "QUARKUS_HTTP_HOST": "127.0.0.1",
               "QUARKUS_LOG_LEVEL": "WARN"}
        spawn(self.proc, [str(self.jdk / "bin" / "java"), *JVM_FLAGS, "-jar",
                          str(self.app / RUNNER)], env=env, cwd=self.app)
        return True

    def healthy(self) -> bool:
        try:
            answer = requests.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=3)
            subjects = requests.get(f"{self.url}/subjects", timeout=3)
        except requests.RequestException:
            return False
        return answer.ok and subjects.ok

    def wait(self, timeout_s: float = 120) -> None:
        wait_until(self.proc, self.healthy, timeout_s)

    def rss_mb(self) -> float | None:
        """Resident memory of the running registry, from /proc."""
        pid = self.proc.pid()
        if pid is None:
            return None
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None
