"""flowmail against a Kafka that takes OAUTHBEARER tokens from an identity provider (OIDC
client credentials), as company clusters and several managed services do.

A private broker of the local stack accepts OAUTHBEARER on its SASL_SSL listener and checks
each token's RS256 signature against the issuer's JWKS, its audience and its issuer
(Kafka's OAuthBearerValidatorCallbackHandler); a small issuer (tests/oidc_issuer.py) hands out
the tokens. The CLI and the SDK (librdkafka's OIDC method) and the worker (its librdkafka
stages and Faust's aiokafka, through flowmail's token provider) get their tokens there.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from core.kafka_security import KafkaSecurity
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from tests.integration.helpers import free_port, outbox, poll
from tests.integration.private_broker import private_broker
from tests.oidc_issuer import Issuer

AUDIENCE = "flowmail-kafka"
CLIENT_ID, CLIENT_SECRET = "flowmail-worker", "client-secret-not-in-any-log-0123"


@pytest.fixture(scope="module")
def oauth(stack, settings, tmp_path_factory):
    issuer = Issuer(CLIENT_ID, CLIENT_SECRET, AUDIENCE)
    tmp_path = tmp_path_factory.mktemp("oauth")
    try:
        with private_broker(tmp_path, settings, start=False) as fresh:
            fresh.stack.kafka.oauth = (issuer.jwks_url, AUDIENCE, issuer.url)
            fresh.stack.up(log=lambda _: None)
            secret_file = tmp_path / "oauth-client-secret"
            secret_file.write_text(CLIENT_SECRET + "\n")
            env = {"FLOWMAIL_KAFKA_BOOTSTRAP": fresh.stack.kafka.secure_bootstrap,
                   "FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                   "FLOWMAIL_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
                   "FLOWMAIL_KAFKA_OAUTH_TOKEN_URL": issuer.token_url,
                   "FLOWMAIL_KAFKA_OAUTH_CLIENT_ID": CLIENT_ID,
                   "FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET_FILE": str(secret_file),
                   "FLOWMAIL_KAFKA_OAUTH_SCOPE": "kafka",
                   "FLOWMAIL_KAFKA_SSL_CA_FILE": str(fresh.stack.kafka.tls.ca_file),
                   "FLOWMAIL_STARTUP_TIMEOUT_S": "60"}
            yield fresh, env, issuer
    finally:
        issuer.close()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowmail", *args],
                          env={**env, "FLOWMAIL_WEB_PORT": str(free_port())},
                          capture_output=True, text=True, timeout=180)


def test_the_pipeline_runs_on_oauthbearer_tokens(oauth):
    fresh, secure, issuer = oauth
    env = {**fresh.env, **secure}
    applied = _cli(env, "topics", "apply")
    assert applied.returncode == 0, applied.stderr
    assert CLIENT_ID in issuer.issued  # librdkafka asked the issuer

    fresh.env.update(secure)
    port = fresh.start_worker("--new-group-starts-at", "earliest", app_id="flowmail-oauth")
    fresh.wait_all_ready(180)
    security = KafkaSecurity(protocol="SASL_SSL", mechanism="OAUTHBEARER",
                             oauth_token_url=issuer.token_url, oauth_client_id=CLIENT_ID,
                             oauth_client_secret=CLIENT_SECRET,
                             ca_file=secure["FLOWMAIL_KAFKA_SSL_CA_FILE"])
    with Publisher(secure["FLOWMAIL_KAFKA_BOOTSTRAP"], security=security) as publisher:
        for index in range(3):
            publisher.publish("order.placed", order_placed(index))
    poll(lambda: len(outbox(fresh.settings.outbox_dir)) >= 3, "3 order confirmations", 180)
    log = next(path for _, p, path in fresh.workers if p == port).read_text()
    assert CLIENT_SECRET not in log and "Traceback" not in log


def test_a_wrong_client_secret_is_refused_by_the_issuer_and_named(oauth):
    fresh, secure, issuer = oauth
    refused_before = issuer.refused
    env = {**fresh.env, **secure, "FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET_FILE": "",
           "FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET": "not-the-secret"}
    answer = _cli(env, "topics", "apply")
    assert answer.returncode != 0
    assert "FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET" in answer.stderr, answer.stderr
    assert "not-the-secret" not in answer.stdout + answer.stderr
    assert issuer.refused > refused_before


def test_a_token_from_an_issuer_the_broker_does_not_trust_is_refused(oauth):
    """Same client credentials, another issuer's key: the broker checks the signature."""
    fresh, secure, _ = oauth
    stranger = Issuer(CLIENT_ID, CLIENT_SECRET, AUDIENCE)
    try:
        env = {**fresh.env, **secure, "FLOWMAIL_KAFKA_OAUTH_TOKEN_URL": stranger.token_url}
        answer = _cli(env, "topics", "apply")
        assert answer.returncode != 0
        assert "OAUTHBEARER" in answer.stderr, answer.stderr
        assert CLIENT_ID in stranger.issued  # it got a token; the broker refused it
    finally:
        stranger.close()
