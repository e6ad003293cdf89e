"""Kafka security settings: checked with errors that name the variable, mapped to each
client's configuration, secrets kept out of reprs and messages."""

from __future__ import annotations

import pytest

from core import kafka_config
from core.kafka_security import KafkaSecurity, KafkaSecurityError, diagnose, security_of
from core.settings import SettingsError, describe, load_settings

SCRAM = {"FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
         "FLOWMAIL_KAFKA_SASL_MECHANISM": "scram-sha-512",
         "FLOWMAIL_KAFKA_SASL_USERNAME": "svc", "FLOWMAIL_KAFKA_SASL_PASSWORD": "s3cret-value"}


def test_plaintext_adds_nothing():
    assert security_of(load_settings({})).librdkafka() == {}
    assert security_of(load_settings({})).faust_credentials() is None


def test_sasl_ssl_with_scram_maps_to_librdkafka(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    security = security_of(load_settings({**SCRAM, "FLOWMAIL_KAFKA_SSL_CA_FILE": str(ca)}))
    assert security.librdkafka() == {
        "security.protocol": "sasl_ssl", "ssl.ca.location": str(ca),
        "ssl.endpoint.identification.algorithm": "https", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc", "sasl.password": "s3cret-value"}
    assert "s3cret-value" not in repr(security)
    config = kafka_config.producer_config("b:9093", security)
    assert config["sasl.password"] == "s3cret-value" and config["acks"] == "all"


def test_oauthbearer_uses_oidc_client_credentials():
    security = security_of(load_settings({
        "FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "FLOWMAIL_KAFKA_SASL_MECHANISM": "OAUTHBEARER",
        "FLOWMAIL_KAFKA_OAUTH_TOKEN_URL": "https://idp.example/token",
        "FLOWMAIL_KAFKA_OAUTH_CLIENT_ID": "flowmail",
        "FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET": "oidc-secret",
        "FLOWMAIL_KAFKA_OAUTH_SCOPE": "kafka"}))
    config = security.librdkafka()
    assert config["sasl.oauthbearer.method"] == "oidc"
    assert config["sasl.oauthbearer.client.secret"] == "oidc-secret"
    assert config["sasl.oauthbearer.scope"] == "kafka"
    assert type(security.faust_credentials()).__name__ == "OAuthCredentials"


@pytest.mark.parametrize("env, names", [
    ({"FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "TLS"}, "FLOWMAIL_KAFKA_SECURITY_PROTOCOL"),
    ({**SCRAM, "FLOWMAIL_KAFKA_SASL_MECHANISM": "GSSAPI"}, "FLOWMAIL_KAFKA_SASL_MECHANISM"),
    ({**SCRAM, "FLOWMAIL_KAFKA_SASL_PASSWORD": ""}, "FLOWMAIL_KAFKA_SASL_PASSWORD"),
    ({"FLOWMAIL_KAFKA_SASL_MECHANISM": "PLAIN"}, "FLOWMAIL_KAFKA_SECURITY_PROTOCOL"),
    ({"FLOWMAIL_KAFKA_SSL_CA_FILE": "/x.pem"}, "FLOWMAIL_KAFKA_SECURITY_PROTOCOL"),
    ({"FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "SSL", "FLOWMAIL_KAFKA_SSL_CA_FILE": "/nope.pem"},
     "FLOWMAIL_KAFKA_SSL_CA_FILE"),
    ({"FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "SSL", "FLOWMAIL_KAFKA_SSL_CERT_FILE": "/c.pem"},
     "FLOWMAIL_KAFKA_SSL_KEY_FILE"),
    ({"FLOWMAIL_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
      "FLOWMAIL_KAFKA_SASL_MECHANISM": "OAUTHBEARER"}, "FLOWMAIL_KAFKA_OAUTH_TOKEN_URL"),
])
def test_settings_that_cannot_work_are_refused_by_name(env, names):
    with pytest.raises(KafkaSecurityError, match=names) as refused:
        security_of(load_settings(env))
    assert "s3cret-value" not in str(refused.value)


def test_a_secret_can_come_from_a_mounted_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    settings = load_settings({**SCRAM, "FLOWMAIL_KAFKA_SASL_PASSWORD": "",
                              "FLOWMAIL_KAFKA_SASL_PASSWORD_FILE": str(secret)})
    assert settings.kafka_sasl_password == "from-a-file"
    assert "from-a-file" not in repr(settings)
    with pytest.raises(SettingsError, match="FLOWMAIL_KAFKA_SASL_PASSWORD"):
        load_settings({**SCRAM, "FLOWMAIL_KAFKA_SASL_PASSWORD_FILE": str(secret)})  # both
    with pytest.raises(SettingsError, match="FLOWMAIL_SMTP_PASSWORD_FILE"):
        load_settings({"FLOWMAIL_SMTP_PASSWORD_FILE": str(tmp_path / "missing")})


def test_secrets_have_no_default_shown():
    rows = {name: default for name, default, _ in describe()}
    assert rows["FLOWMAIL_KAFKA_SASL_PASSWORD"] == ""
    assert rows["FLOWMAIL_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"


SASL = KafkaSecurity(protocol="SASL_SSL", mechanism="SCRAM-SHA-512", username="u",
                     password="p")


@pytest.mark.parametrize("errors, names", [
    (["SASL authentication error: Authentication failed during authentication due to invalid "
      "credentials with SASL mechanism SCRAM-SHA-512"], "FLOWMAIL_KAFKA_SASL_PASSWORD"),
    (["ssl://localhost:9094/bootstrap: SSL handshake failed: error:0A000086:SSL "
      "routines::certificate verify failed: broker certificate could not be verified, verify "
      "that ssl.ca.location is correctly configured"], "FLOWMAIL_KAFKA_SSL_CA_FILE"),
    (["localhost:9094/bootstrap: Disconnected while requesting ApiVersion: might be caused "
      "by incorrect security.protocol configuration (connecting to a SSL listener?)"],
     "FLOWMAIL_KAFKA_SECURITY_PROTOCOL"),
    (["SSL handshake failed: error:0A00010B:SSL routines::wrong version number"],
     "FLOWMAIL_KAFKA_SECURITY_PROTOCOL"),
])
def test_broker_refusals_become_the_setting_to_change(errors, names):
    assert names in diagnose(errors, "localhost:9094", SASL)


def test_a_plaintext_client_closed_on_at_its_first_request_is_told_to_use_tls():
    plain = KafkaSecurity()
    heard = ["[thrd:localhost:9094/bootstrap]: localhost:9094/bootstrap: Disconnected: connection "
             "closed by peer: receive 0 after POLLIN (after 0ms in state APIVERSION_QUERY)"]
    assert "FLOWMAIL_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in diagnose(heard, "h:9094", plain)


def test_a_cluster_asking_for_a_client_certificate_says_which_settings():
    tls = KafkaSecurity(protocol="SSL", ca_file="/ca.pem")
    heard = ["ssl://localhost:9095/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls "
             "alert bad certificate: SSL alert number 42 (after 0ms in state APIVERSION_QUERY)"]
    assert "FLOWMAIL_KAFKA_SSL_CERT_FILE and FLOWMAIL_KAFKA_SSL_KEY_FILE" in diagnose(
        heard, "h:9095", tls)
    with_cert = KafkaSecurity(protocol="SSL", cert_file="/c.pem", key_file="/k.pem")
    assert "refused the client certificate" in diagnose(heard, "h:9095", with_cert)


def test_a_token_endpoint_refusal_names_the_client_credentials_not_the_broker():
    oauth = KafkaSecurity(protocol="SASL_SSL", mechanism="OAUTHBEARER",
                          oauth_token_url="https://idp.example/token", oauth_client_id="c",
                          oauth_client_secret="s")
    refused = ['OIDC [thrd:background]: Failed to retrieve OIDC token from '
               '"https://idp.example/token": {"error": "invalid_client"} (401)']
    told = diagnose(refused, "h:9094", oauth)
    assert "FLOWMAIL_KAFKA_OAUTH_CLIENT_SECRET" in told and "idp.example/token" in told
    unreachable = ['OIDC [thrd:background]: Failed to retrieve OIDC token from '
                   '"https://idp.example/token": Could not connect to server (-1)']
    assert "FLOWMAIL_KAFKA_OAUTH_TOKEN_URL" in diagnose(unreachable, "h:9094", oauth)
    # the broker refusing a token it does not trust is the broker's refusal
    broker = ['sasl_ssl://localhost:9094/bootstrap: SASL authentication error: '
              '{"status":"invalid_token"} (after 111ms in state AUTH_REQ)']
    assert "refused the OAUTHBEARER token" in diagnose(broker, "h:9094", oauth)


def test_an_unrecognised_error_is_not_guessed_at():
    assert diagnose(["Connection refused"], "localhost:9094", SASL) is None


def test_opensearch_requests_are_signed_with_sigv4_when_a_region_is_set(monkeypatch):
    """A real HTTP request to a local server: the Authorization header is AWS SigV4 for the
    region and service the settings name (Amazon OpenSearch Service checks exactly this)."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from core.opensearch_client import http_session

    seen: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.update(self.headers.items())
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    settings = load_settings({"FLOWMAIL_OPENSEARCH_URL": "https://search.example",
                              "FLOWMAIL_OPENSEARCH_AWS_REGION": "eu-central-1"})
    session = http_session(settings)
    session.get(f"http://127.0.0.1:{server.server_port}/_cluster/health", timeout=5)
    server.server_close()
    authorization = seen["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-central-1/es/aws4_request" in authorization
    assert "X-Amz-Date" in seen


def test_opensearch_credentials_over_plain_http_are_refused():
    from core.opensearch_client import http_session

    with pytest.raises(SettingsError, match="https://"):
        http_session(load_settings({"FLOWMAIL_OPENSEARCH_USERNAME": "u",
                                    "FLOWMAIL_OPENSEARCH_PASSWORD": "p"}))
