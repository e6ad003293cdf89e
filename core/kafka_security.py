"""How flowmail's Kafka clients prove who they are and whom they talk to.

Managed Kafka (Confluent Cloud, Amazon MSK, Aiven, Redpanda Cloud, a company cluster) takes
TLS and SASL; the local stack also serves a SASL_SSL listener (SCRAM, a CA of its own) so this
path is tested for real. ``KafkaSecurity`` is read from the ``FLOWMAIL_KAFKA_*`` settings
once, checked (an error names the variable to change), and turned into each client's
configuration: librdkafka's (every confluent-kafka client: the batch stages, the publisher
SDK, admin, CLI, benchmark, through core/kafka_config.py) and aiokafka's (Faust's
credentials). Secrets never reach a log line: ``repr`` leaves them out, and a diagnosis names
settings, never values.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from aiokafka.abc import AbstractTokenProvider

if TYPE_CHECKING:
    from faust.types.auth import CredentialsT

    from core.settings import Settings

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")


class KafkaSecurityError(ValueError):
    """The security settings cannot work; the message names the variable."""


@dataclass(frozen=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    key_password: str = field(default="", repr=False)
    verify_hostname: bool = True
    oauth_token_url: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = field(default="", repr=False)
    oauth_scope: str = ""

    @property
    def tls(self) -> bool:
        return self.protocol in {"SSL", "SASL_SSL"}

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def librdkafka(self) -> dict[str, Any]:
        """The keys every confluent-kafka client gets (nothing for PLAINTEXT)."""
        config: dict[str, Any] = {}
        if self.protocol == "PLAINTEXT":
            return config
        config["security.protocol"] = self.protocol.lower()
        if self.tls:
            if self.ca_file:
                config["ssl.ca.location"] = self.ca_file
            if self.cert_file:
                config["ssl.certificate.location"] = self.cert_file
                config["ssl.key.location"] = self.key_file
                if self.key_password:
                    config["ssl.key.password"] = self.key_password
            config["ssl.endpoint.identification.algorithm"] = (
                "https" if self.verify_hostname else "none")
        if self.sasl:
            config["sasl.mechanism"] = self.mechanism
            if self.mechanism == "OAUTHBEARER":
                config.update({"sasl.oauthbearer.method": "oidc",
                               "sasl.oauthbearer.token.endpoint.url": self.oauth_token_url,
                               "sasl.oauthbearer.client.id": self.oauth_client_id,
                               "sasl.oauthbearer.client.secret": self.oauth_client_secret})
                if self.oauth_scope:
                    config["sasl.oauthbearer.scope"] = self.oauth_scope
            else:
                config["sasl.username"] = self.username
                config["sasl.password"] = self.password
        return config

    def ssl_context(self) -> ssl.SSLContext | None:
        """For aiokafka (Faust): the same trust, client certificate and hostname check."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file or None)
        context.check_hostname = self.verify_hostname
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file, self.key_password or None)
        return context

    def faust_credentials(self) -> CredentialsT | None:
        """Faust's ``broker_credentials``: None for PLAINTEXT."""
        from faust.auth import OAuthCredentials, SASLCredentials, SSLCredentials

        if self.protocol == "PLAINTEXT":
            return None
        if self.protocol == "SSL":
            return SSLCredentials(self.ssl_context())
        if self.mechanism == "OAUTHBEARER":
            return OAuthCredentials(oauth_cb=_ClientCredentialsTokens(self),
                                    ssl_context=self.ssl_context())
        return SASLCredentials(username=self.username, password=self.password,
                               ssl_context=self.ssl_context(), mechanism=self.mechanism)


def security_of(settings: Settings) -> KafkaSecurity:
    """Checked: every problem found here would otherwise be a client retrying forever."""
    protocol = settings.kafka_security_protocol.strip().upper()
    if protocol not in PROTOCOLS:
        raise KafkaSecurityError(f"FLOWMAIL_KAFKA_SECURITY_PROTOCOL={protocol!r}: use one of "
                                 f"{', '.join(PROTOCOLS)}")
    mechanism = settings.kafka_sasl_mechanism.strip().upper()
    security = KafkaSecurity(
        protocol=protocol, mechanism=mechanism, username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password, ca_file=settings.kafka_ssl_ca_file.strip(),
        cert_file=settings.kafka_ssl_cert_file.strip(),
        key_file=settings.kafka_ssl_key_file.strip(),
        key_password=settings.kafka_ssl_key_password,
        verify_hostname=settings.kafka_ssl_verify_hostname,
        oauth_token_url=settings.kafka_oauth_token_url,
        oauth_client_id=settings.kafka_oauth_client_id,
        oauth_client_secret=settings.kafka_oauth_client_secret,
        oauth_scope=settings.kafka_oauth_scope)
    _check(security)
    return security


def _check(security: KafkaSecurity) -> None:
    if security.sasl:
        if security.mechanism not in MECHANISMS:
            raise KafkaSecurityError(
                f"FLOWMAIL_KAFKA_SASL_MECHANISM={security.mechanism!r}: with "
                f"{security.protocol} use one of {', '.join(MECHANISMS)}")
        if security.mechanism == "OAUTHBEARER":
            missing = [name for name, value in (
                ("FLOWMAIL_KAFKA_OAUTH_TOKEN_URL", security.oauth_token_url),
                ("FLOWMAIL_KAFKA_OAUTH_CLIENT_ID", security.oauth_client_id),
                ("FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET", security.oauth_client_secret))
                if not value]
            if missing:
                raise KafkaSecurityError(f"OAUTHBEARER needs {', '.join(missing)}")
        elif not (security.username and security.password):
            raise KafkaSecurityError(
                f"{security.protocol} with {security.mechanism} needs "
                "FLOWMAIL_KAFKA_SASL_USERNAME and FLOWMAIL_KAFKA_SASL_PASSWORD "
                "(or FLOWMAIL_KAFKA_SASL_PASSWORD_FILE)")
    elif security.mechanism:
        raise KafkaSecurityError(
            f"FLOWMAIL_KAFKA_SASL_MECHANISM is set but FLOWMAIL_KAFKA_SECURITY_PROTOCOL="
            f"{security.protocol} uses no SASL: use SASL_SSL (or SASL_PLAINTEXT)")
    tls_files = (("FLOWMAIL_KAFKA_SSL_CA_FILE", security.ca_file),
                 ("FLOWMAIL_KAFKA_SSL_CERT_FILE", security.cert_file),
                 ("FLOWMAIL_KAFKA_SSL_KEY_FILE", security.key_file))
    if not security.tls and any(value for _, value in tls_files):
        raise KafkaSecurityError(
            f"TLS files are set but FLOWMAIL_KAFKA_SECURITY_PROTOCOL={security.protocol} "
            "does not use TLS: use SSL or SASL_SSL")
    if bool(security.cert_file) != bool(security.key_file):
        raise KafkaSecurityError("a client certificate needs both FLOWMAIL_KAFKA_SSL_CERT_FILE "
                                 "and FLOWMAIL_KAFKA_SSL_KEY_FILE")
    for name, value in tls_files:
        if value and not Path(value).is_file():
            raise KafkaSecurityError(f"{name}={value}: no such file")


def diagnose(errors: list[str], bootstrap: str, security: KafkaSecurity) -> str | None:
    """What to change, from librdkafka's error texts; None when nothing is recognised."""
    text = " | ".join(errors).lower()
    if "failed to retrieve oidc token" in text:  # the identity provider, not Kafka, refused
        if "(401)" in text or "(400)" in text or "invalid_client" in text:
            return (f"the token endpoint FLOWMAIL_KAFKA_OAUTH_TOKEN_URL={security.oauth_token_url}"
                    " refused the client credentials: check FLOWMAIL_KAFKA_OAUTH_CLIENT_ID and "
                    "FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET (and FLOWMAIL_KAFKA_OAUTH_SCOPE)")
        return (f"no OAUTHBEARER token from FLOWMAIL_KAFKA_OAUTH_TOKEN_URL="
                f"{security.oauth_token_url}: check that URL (reachable from here, the token "
                "endpoint of your identity provider)")
    if "authentication" in text and ("failed" in text or "invalid" in text):
        if security.mechanism == "OAUTHBEARER":
            return (f"Kafka at {bootstrap} refused the OAUTHBEARER token: check "
                    "FLOWMAIL_KAFKA_OAUTH_CLIENT_ID, FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET and "
                    "FLOWMAIL_KAFKA_OAUTH_TOKEN_URL")
        return (f"Kafka at {bootstrap} refused the credentials: check "
                "FLOWMAIL_KAFKA_SASL_USERNAME and FLOWMAIL_KAFKA_SASL_PASSWORD (and "
                f"FLOWMAIL_KAFKA_SASL_MECHANISM={security.mechanism})")
    if "certificate verify failed" in text or "broker certificate could not be verified" in text:
        if "hostname" in text or "ip address mismatch" in text:
            return (f"the certificate of Kafka at {bootstrap} is not for that host name: use "
                    "the host name it was issued for in FLOWMAIL_KAFKA_BOOTSTRAP (or, for a "
                    "test cluster only, FLOWMAIL_KAFKA_SSL_VERIFY_HOSTNAME=false)")
        return (f"the certificate of Kafka at {bootstrap} is not trusted: set "
                "FLOWMAIL_KAFKA_SSL_CA_FILE to the CA certificate that signed it")
    if security.tls and ("alert bad certificate" in text or "certificate required" in text
                         or "alert certificate unknown" in text):
        if not security.cert_file:
            return (f"Kafka at {bootstrap} asks for a client certificate (mutual TLS): set "
                    "FLOWMAIL_KAFKA_SSL_CERT_FILE and FLOWMAIL_KAFKA_SSL_KEY_FILE")
        return (f"Kafka at {bootstrap} refused the client certificate in "
                "FLOWMAIL_KAFKA_SSL_CERT_FILE: it must be signed by a CA the cluster trusts, "
                "and not expired")
    if "security.protocol" in text or "connecting to a ssl listener" in text:
        return (f"Kafka at {bootstrap} expects TLS, and FLOWMAIL_KAFKA_SECURITY_PROTOCOL="
                f"{security.protocol}: set it to SSL or SASL_SSL (with the cluster's "
                "FLOWMAIL_KAFKA_SASL_* credentials)")
    if not security.tls and "apiversion_query" in text and (
            "connection closed" in text or "disconnected" in text):
        return (f"Kafka at {bootstrap} closed the connection at its first request: it "
                f"expects TLS (or SASL) there, and FLOWMAIL_KAFKA_SECURITY_PROTOCOL="
                f"{security.protocol}: set it to SASL_SSL or SSL as the cluster requires")
    if security.tls and ("wrong version number" in text or "packet length too long" in text
                         or "unexpected eof" in text or "ssl handshake failed" in text):
        return (f"Kafka at {bootstrap} does not speak TLS there, and "
                f"FLOWMAIL_KAFKA_SECURITY_PROTOCOL={security.protocol}: use that listener's "
                "protocol (PLAINTEXT or SASL_PLAINTEXT), or the cluster's TLS port")
    if security.sasl and "unsupported sasl mechanism" in text:
        return (f"Kafka at {bootstrap} does not offer FLOWMAIL_KAFKA_SASL_MECHANISM="
                f"{security.mechanism}")
    return None


class _ClientCredentialsTokens(AbstractTokenProvider):
    """aiokafka's token provider for OAUTHBEARER: OIDC client credentials, cached until a
    minute before expiry (librdkafka does the same for the confluent-kafka clients)."""

    def __init__(self, security: KafkaSecurity) -> None:
        self.security = security
        self._token = ""
        self._until = 0.0

    async def token(self) -> str:
        if time.time() < self._until:
            return self._token
        answer = await asyncio.get_running_loop().run_in_executor(None, self._fetch)
        self._token = answer["access_token"]
        self._until = time.time() + float(answer.get("expires_in", 300)) - 60
        return self._token

    def _fetch(self) -> dict[str, Any]:
        data = {"grant_type": "client_credentials"}
        if self.security.oauth_scope:
            data["scope"] = self.security.oauth_scope
        response = requests.post(self.security.oauth_token_url, data=data, timeout=10,
                                 auth=(self.security.oauth_client_id,
                                       self.security.oauth_client_secret))
        response.raise_for_status()
        return response.json()

    def extensions(self) -> dict[str, str]:
        return {}
