"""flowmail against a secured cluster: Kafka over SASL_SSL (SCRAM, a CA of the stack's own)
and OpenSearch over TLS with basic auth, the way managed services require.

A private broker of the local stack serves a SASL_SSL listener beside its plaintext one
(flowmail/localstack/kafka.py); OpenSearch is reached through a TLS proxy that checks basic
auth (flowmail/localstack/tls_proxy.py: the security plugin is not on Maven Central). The
worker, the publisher SDK and the CLI connect over them; the three ways of getting it wrong
are each refused with a message that names the setting to change, and no secret is printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from core.kafka_security import KafkaSecurity
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from tests.integration.helpers import free_port, outbox, poll, search
from tests.integration.private_broker import private_broker

INDEX_PREFIX = "secured-email-events"


@pytest.fixture(scope="module")
def secured(stack, settings, tmp_path_factory):
    """One private broker for the module (its start is most of each test's time)."""
    tmp_path = tmp_path_factory.mktemp("secured")
    with private_broker(tmp_path, settings, FLOWMAIL_INDEX_PREFIX=INDEX_PREFIX) as fresh:
        kafka = fresh.stack.kafka
        user, password = kafka.scram_user()
        password_file = tmp_path / "kafka-password"
        password_file.write_text(password + "\n")  # as a mounted Secret holds it
        secure = {"FLOWMAIL_KAFKA_BOOTSTRAP": kafka.secure_bootstrap,
                  "FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                  "FLOWMAIL_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                  "FLOWMAIL_KAFKA_SASL_USERNAME": user,
                  "FLOWMAIL_KAFKA_SASL_PASSWORD_FILE": str(password_file),
                  "FLOWMAIL_KAFKA_SSL_CA_FILE": str(kafka.tls.ca_file)}
        yield fresh, secure, password


def _cli(env: dict[str, str], *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flowmail", *args], env=env,
                          capture_output=True, text=True, timeout=timeout_s)


@pytest.fixture
def opensearch_proxy(secured, settings, tmp_path):
    """The session's OpenSearch behind TLS (the stack's CA) and basic auth."""
    fresh, _, _ = secured
    tls = fresh.stack.kafka.tls
    password_file = tmp_path / "opensearch-password"
    password_file.write_text("os-" + "p4ssw0rd-not-in-any-log")
    port = free_port()
    proxy = subprocess.Popen(
        [sys.executable, "-m", "flowmail.localstack.tls_proxy", "--port", str(port),
         "--upstream", settings.opensearch_url, "--cert", str(tls.server_cert),
         "--key", str(tls.server_key), "--user", "analytics",
         "--password-file", str(password_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"https://localhost:{port}"

    def answers() -> bool:
        try:
            return requests.get(url, verify=str(tls.ca_file), timeout=2).status_code == 401
        except requests.RequestException:
            return False

    poll(answers, "the TLS proxy answering", 30)
    yield {"FLOWMAIL_OPENSEARCH_URL": url, "FLOWMAIL_OPENSEARCH_USERNAME": "analytics",
           "FLOWMAIL_OPENSEARCH_PASSWORD_FILE": str(password_file),
           "FLOWMAIL_OPENSEARCH_CA_FILE": str(tls.ca_file)}, password_file.read_text()
    proxy.terminate()
    proxy.wait(timeout=10)


def test_the_pipeline_runs_over_sasl_ssl_and_tls_with_basic_auth(secured, opensearch_proxy,
                                                                  settings):
    fresh, secure, password = secured
    os_env, os_password = opensearch_proxy
    fresh.env.update({**secure, **os_env})
    port = fresh.start_worker("--new-group-starts-at", "earliest", app_id="flowmail-secured")
    fresh.wait_all_ready(180)

    # the SDK, with its security given explicitly (another team's service would)
    user = secure["FLOWMAIL_KAFKA_SASL_USERNAME"]
    security = KafkaSecurity(protocol="SASL_SSL", mechanism="SCRAM-SHA-512", username=user,
                             password=password, ca_file=secure["FLOWMAIL_KAFKA_SSL_CA_FILE"])
    events = [order_placed(i) for i in range(5)]
    with Publisher(secure["FLOWMAIL_KAFKA_BOOTSTRAP"], security=security) as publisher:
        for event in events:
            publisher.publish("order.placed", event)
    # and the CLI, with the settings of the environment
    document = Path(fresh.settings.home) / "order.json"
    document.write_text(json.dumps(order_placed(99), default=str))
    published = _cli({**fresh.env, "FLOWMAIL_WEB_PORT": str(free_port())}, "publish",
                     "order.placed", str(document))
    assert published.returncode == 0, published.stderr

    mail = fresh.settings.outbox_dir
    poll(lambda: len(outbox(mail)) >= 6, "6 order confirmations sent", 180)
    ids = [e["event_id"] for e in events]
    found = poll(lambda: search(settings.opensearch_url, f"{INDEX_PREFIX}-*",
                                {"terms": {"source_event_id": ids}}) or None,
                 "delivery events indexed through the TLS proxy", 120)
    assert {hit["_source"]["source_event_id"] for hit in found} <= set(ids)
    log = next(path for _, p, path in fresh.workers if p == port).read_text()
    assert password not in log and os_password not in log
    assert "Traceback" not in log


@pytest.mark.parametrize("wrong, names", [
    ({"FLOWMAIL_KAFKA_SASL_PASSWORD_FILE": "", "FLOWMAIL_KAFKA_SASL_PASSWORD": "not-it"},
     "FLOWMAIL_KAFKA_SASL_PASSWORD"),
    ({"FLOWMAIL_KAFKA_SSL_CA_FILE": ""}, "FLOWMAIL_KAFKA_SSL_CA_FILE"),
    ({"FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "FLOWMAIL_KAFKA_SASL_MECHANISM": "",
      "FLOWMAIL_KAFKA_SSL_CA_FILE": ""}, "FLOWMAIL_KAFKA_SECURITY_PROTOCOL"),
], ids=["wrong password", "untrusted certificate", "plaintext client on the TLS listener"])
def test_a_wrong_configuration_is_refused_with_the_setting_to_change(secured, wrong, names):
    fresh, secure, password = secured
    env = {**fresh.env, **secure, **wrong, "FLOWMAIL_STARTUP_TIMEOUT_S": "60"}
    began = time.monotonic()
    answer = _cli(env, "topics", "apply")
    assert answer.returncode != 0
    assert names in answer.stderr, answer.stderr
    assert time.monotonic() - began < 55  # refused, not retried until the start-up timeout
    assert password not in answer.stdout + answer.stderr
    assert "not-it" not in answer.stdout + answer.stderr


def test_opensearch_refuses_a_wrong_password_and_an_untrusted_certificate(opensearch_proxy):
    from core.opensearch_client import http_session
    from core.settings import load_settings

    os_env, _ = opensearch_proxy
    right = http_session(load_settings(os_env))
    assert right.get(os_env["FLOWMAIL_OPENSEARCH_URL"], timeout=10).status_code == 200
    wrong = load_settings({**os_env, "FLOWMAIL_OPENSEARCH_PASSWORD_FILE": "",
                           "FLOWMAIL_OPENSEARCH_PASSWORD": "wrong"})
    assert http_session(wrong).get(os_env["FLOWMAIL_OPENSEARCH_URL"],
                                   timeout=10).status_code == 401
    untrusted = load_settings({**os_env, "FLOWMAIL_OPENSEARCH_CA_FILE": ""})
    with pytest.raises(requests.exceptions.SSLError):
        http_session(untrusted).get(os_env["FLOWMAIL_OPENSEARCH_URL"], timeout=10)


def test_mutual_tls_takes_a_client_certificate_and_refuses_a_client_without(secured):
    fresh, _, _ = secured
    kafka = fresh.stack.kafka
    base = {**fresh.env, "FLOWMAIL_KAFKA_BOOTSTRAP": kafka.mtls_bootstrap,
            "FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "SSL", "FLOWMAIL_KAFKA_SASL_MECHANISM": "",
            "FLOWMAIL_KAFKA_SASL_USERNAME": "", "FLOWMAIL_KAFKA_SASL_PASSWORD_FILE": "",
            "FLOWMAIL_KAFKA_SSL_CA_FILE": str(kafka.tls.ca_file),
            "FLOWMAIL_STARTUP_TIMEOUT_S": "60"}
    accepted = _cli({**base, "FLOWMAIL_KAFKA_SSL_CERT_FILE": str(kafka.tls.client_cert),
                     "FLOWMAIL_KAFKA_SSL_KEY_FILE": str(kafka.tls.client_key)},
                    "topics", "apply")
    assert accepted.returncode == 0, accepted.stderr
    refused = _cli(base, "topics", "apply")
    assert refused.returncode != 0
    assert "FLOWMAIL_KAFKA_SSL_CERT_FILE" in refused.stderr, refused.stderr
