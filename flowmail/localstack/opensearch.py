"""A single-node OpenSearch 2.19 run from Maven Central jars by a tiny launcher class."""

from __future__ import annotations

from pathlib import Path

import requests

from core.settings import PROJECT_ROOT
from flowmail.localstack.jvm import maven_fetch, require_javac
from flowmail.localstack.procs import (
    Managed,
    StackError,
    require_free_ports,
    run_checked,
    spawn,
    wait_until,
)

POM = PROJECT_ROOT / "deploy" / "local" / "opensearch-pom.xml"
LAUNCHER = PROJECT_ROOT / "deploy" / "local" / "LocalOpenSearch.java"
TRANSPORT_PORT = 9300

OPENSEARCH_YML = """\
cluster.name: flowmail-local
node.name: local-node
path.data: {home}/data
path.logs: {home}/logs
network.host: 127.0.0.1
http.port: {port}
transport.port: {transport_port}
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
indices.breaker.total.use_real_memory: false
action.auto_create_index: true
"""

LOG4J2 = """\
status = error
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] %m%n
rootLogger.level = info
rootLogger.appenderRef.console.ref = console
logger.deprecation.name = org.opensearch.deprecation
logger.deprecation.level = error
"""

JVM_FLAGS = [
    "-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-XX:G1ReservePercent=25",
    "-XX:InitiatingHeapOccupancyPercent=30", "-Xss1m", "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8", "-Djna.nosys=true", "-XX:-OmitStackTraceInFastThrow",
    "-Dio.netty.noUnsafe=true", "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0", "-Dio.netty.allocator.numDirectArenas=0",
    "-Dlog4j.shutdownHookEnabled=false", "-Dlog4j2.disable.jmx=true",
    "-Djava.locale.providers=SPI,COMPAT",
]


class OpenSearchService:
    """Fetch, compile the launcher, start and health-check the node; state under ``root``."""

    def __init__(self, root: Path, cache: Path, port: int, jdk: Path) -> None:
        self.root, self.cache, self.port, self.jdk = root, cache, port, jdk
        self.lib = cache / "opensearch-lib"
        self.classes = cache / "opensearch-launcher"
        self.home = root / "home"
        self.proc = Managed("opensearch", root / "opensearch.pid", "LocalOpenSearch",
                            root / "logs" / "opensearch.out")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fetch(self) -> None:
        maven_fetch(POM, self.lib, self.cache / "m2", self.jdk,
                    self.root / "logs" / "mvn-opensearch.log")
        compiled = self.classes / "LocalOpenSearch.class"
        if compiled.exists() and compiled.stat().st_mtime >= LAUNCHER.stat().st_mtime:
            return
        self.classes.mkdir(parents=True, exist_ok=True)
        run_checked([str(require_javac(self.jdk)), "--release", "17", "-cp", f"{self.lib}/*",
                     "-d", str(self.classes), str(LAUNCHER)], "compiling LocalOpenSearch.java",
                    self.root / "logs" / "javac.log")

    def _configure(self) -> None:
        for sub in ("config", "data", "logs", "tmp", "modules", "plugins"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.home / "config" / "opensearch.yml").write_text(OPENSEARCH_YML.format(
            home=self.home, port=self.port, transport_port=TRANSPORT_PORT))
        (self.home / "config" / "log4j2.properties").write_text(LOG4J2)

    def start(self) -> bool:
        if self.proc.running():
            return False
        require_free_ports("opensearch", [self.port, TRANSPORT_PORT])
        self._configure()
        spawn(self.proc, [str(self.jdk / "bin" / "java"), *JVM_FLAGS,
                          f"-Djava.io.tmpdir={self.home / 'tmp'}",
                          "-cp", f"{self.classes}:{self.lib}/*", "LocalOpenSearch", str(self.home)])
        return True

    def healthy(self) -> bool:
        """Cluster health answers yellow or green."""
        try:
            answer = requests.get(f"{self.url}/_cluster/health",
                                  params={"wait_for_status": "yellow", "timeout": "1s"}, timeout=3)
        except requests.RequestException:
            return False
        return answer.ok and answer.json().get("status") in {"yellow", "green"}

    def wait(self, timeout_s: float = 180) -> None:
        wait_until(self.proc, self.healthy, timeout_s)

    def version(self) -> str:
        try:
            return requests.get(self.url, timeout=3).json()["version"]["number"]
        except (requests.RequestException, KeyError, ValueError) as err:
            raise StackError(f"opensearch at {self.url} did not report its version") from err
