"""A single-node Apache Kafka 4.1 broker in KRaft mode (combined broker + controller)."""

from __future__ import annotations

import base64
import secrets
import uuid
from pathlib import Path

from core.settings import PROJECT_ROOT
from flowmail.localstack.jvm import maven_fetch
from flowmail.localstack.procs import Managed, require_free_ports, run_checked, spawn, wait_until
from flowmail.localstack.tls import StackTls, ensure_tls

POM = PROJECT_ROOT / "deploy" / "local" / "kafka-pom.xml"
SCRAM_USER = "flowmail"
JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port},SASL_SSL://127.0.0.1:{secure_port},SSL://127.0.0.1:{mtls_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://localhost:{secure_port},SSL://localhost:{mtls_port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location={keystore}
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location={ca}
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config={jaas}
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={keystore}
log.dirs={data}
num.partitions=1
num.network.threads=2
num.io.threads=2
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
message.max.bytes=2097152
# erasure within the bound (README: Erasure) is checked within seconds here, not minutes
log.retention.check.interval.ms=5000
log.segment.delete.delay.ms=1000
log.cleaner.backoff.ms=2000
"""

# OAUTHBEARER on the SASL_SSL listener, beside SCRAM: tokens are JWTs an OIDC issuer signs,
# checked against its JWKS (what a company cluster with an identity provider does)
OAUTH_PROPERTIES = """\
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,OAUTHBEARER
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config={login}
listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
sasl.oauthbearer.jwks.endpoint.url={jwks_url}
sasl.oauthbearer.expected.audience={audience}
sasl.oauthbearer.expected.issuer={issuer}
"""

OAUTH_LOGIN = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"

LOG4J2 = """\
status = warn
name = local-kafka
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


def _cluster_id() -> str:
    """A KRaft cluster id as Kafka's Uuid.randomUuid makes them: never with a leading '-',
    which the storage tool's argument parser takes for an option (1 start in 64 failed)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


class KafkaService:
    """Fetch, format, start and health-check the broker; all state under ``root``."""

    def __init__(self, root: Path, cache: Path, port: int, jdk: Path) -> None:
        self.root, self.cache, self.port, self.jdk = root, cache, port, jdk
        self.lib = cache / "kafka-lib"
        self.proc = Managed("kafka", root / "kafka.pid", "kafka.Kafka", root / "logs" / "kafka.out")
        # (JWKS URL, audience, issuer): also accept OAUTHBEARER on the SASL_SSL listener
        self.oauth: tuple[str, str, str] | None = None

    @property
    def controller_port(self) -> int:
        """The KRaft controller listens on the port after the broker's (9092 -> 9093)."""
        return self.port + 1

    @property
    def secure_port(self) -> int:
        """The SASL_SSL listener (SCRAM; the stack's own CA): the port after the controller's
        (9092 -> 9094)."""
        return self.port + 2

    @property
    def mtls_port(self) -> int:
        """The SSL listener that requires a client certificate of the stack's CA (mutual
        TLS): the port after the SASL_SSL one (9092 -> 9095)."""
        return self.port + 3

    @property
    def mtls_bootstrap(self) -> str:
        return f"localhost:{self.mtls_port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_bootstrap(self) -> str:
        return f"localhost:{self.secure_port}"

    @property
    def tls(self) -> StackTls:
        return ensure_tls(self.root / "tls")

    def scram_user(self) -> tuple[str, str]:
        """The SCRAM user of the SASL_SSL listener and its password (made once, kept in a
        file only the owner reads)."""
        path = self.root / "tls" / "scram-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
            path.chmod(0o600)
            path.write_text(secrets.token_urlsafe(24))
        return SCRAM_USER, path.read_text().strip()

    def ensure_scram_user(self, timeout_s: float = 30) -> None:
        """Register the user through the plaintext listener (idempotent: an upsert), so a
        data folder formatted before this listener existed gets it too."""
        from confluent_kafka.admin import (
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        user, password = self.scram_user()
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": _QuietLogger()})
        for mechanism in (ScramMechanism.SCRAM_SHA_512, ScramMechanism.SCRAM_SHA_256):
            # one mechanism a request: the broker refuses two changes of one user in one
            upsert = UserScramCredentialUpsertion(user, ScramCredentialInfo(mechanism, 8192),
                                                  password.encode())
            for future in admin.alter_user_scram_credentials(
                    [upsert], request_timeout=timeout_s).values():
                future.result()

    def fetch(self) -> None:
        maven_fetch(POM, self.lib, self.cache / "m2", self.jdk,
                    self.root / "logs" / "mvn-kafka.log")

    def _configure(self) -> tuple[Path, str]:
        config = self.root / "config"
        config.mkdir(parents=True, exist_ok=True)
        tls = ensure_tls(self.root / "tls")
        (config / "server.properties").write_text(SERVER_PROPERTIES.format(
            port=self.port, controller_port=self.controller_port, secure_port=self.secure_port,
            mtls_port=self.mtls_port, keystore=tls.server_keystore, ca=tls.ca_file, jaas=JAAS,
            data=self.root / "data") + (OAUTH_PROPERTIES.format(
                jwks_url=self.oauth[0], audience=self.oauth[1], issuer=self.oauth[2],
                login=OAUTH_LOGIN)
                if self.oauth else ""))
        (config / "log4j2.properties").write_text(LOG4J2)
        log4j = f"-Dlog4j2.configurationFile={config / 'log4j2.properties'}"
        return config / "server.properties", log4j

    def start(self) -> bool:
        """Start unless ours is already running; False when it was already up."""
        if self.proc.running():
            return False
        require_free_ports("kafka", [self.port, self.controller_port, self.secure_port,
                                     self.mtls_port])
        properties, log4j = self._configure()
        java = str(self.jdk / "bin" / "java")
        classpath = f"{self.lib}/*"
        if not (self.root / "data" / "meta.properties").exists():
            cluster_id = _cluster_id()
            run_checked([java, "-Xmx256m", log4j, "-cp", classpath, "kafka.tools.StorageTool",
                         "format", "-t", cluster_id, "-c", str(properties), "--ignore-formatted"],
                        "kafka storage format", self.root / "logs" / "format.log")
        # Kafka 4 fetches only the JWKS URLs this property allows
        allowed = ([f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={self.oauth[0]}"]
                   if self.oauth else [])
        spawn(self.proc, [java, "-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                          "-XX:InitiatingHeapOccupancyPercent=35", "-Djava.awt.headless=true",
                          *allowed, f"-Dkafka.logs.dir={self.root / 'logs'}", log4j, "-cp",
                          classpath, "kafka.Kafka", str(properties)])
        return True

    def healthy(self) -> bool:
        """The broker answers a metadata request."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0,
                             "logger": _QuietLogger()})
        try:
            metadata = admin.list_topics(timeout=2)
        except KafkaException:
            return False
        return bool(metadata.brokers)

    def wait(self, timeout_s: float = 120) -> None:
        wait_until(self.proc, self.healthy, timeout_s)
        self.ensure_scram_user()


class _QuietLogger:
    """Swallows librdkafka's connection-refused chatter while the broker boots."""

    def log(self, *args: object, **kwargs: object) -> None:
        return None

    def __getattr__(self, name: str) -> object:
        return self.log
