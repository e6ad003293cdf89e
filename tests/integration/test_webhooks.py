"""`flowmail webhooks` on the real stack: requests signed as each provider signs them are
published (delivery events, suppressions); forged, replayed, stale, oversized and malformed
ones are refused and publish nothing; a bounce stops the next email; an open and a click land
on the email's history in OpenSearch."""

from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from core.avro import registry
from flowmail.localstack.tls import ensure_tls
from flowmail.publisher import Publisher
from flowmail.samples import SAMPLES, campaign_launched
from processors.keys import idempotency_key, recipient_key
from streams.topics import DELIVERY, DLQ, SEEN_TOKENS, SUPPRESSIONS
from tests.integration.helpers import end_offsets, free_port, headers_of, poll, read_topic, search
from tests.integration.test_all_event_types import fresh_user
from tests.webhook_signing import SendGridSigner, SnsSigner, mailgun_body, ses_event

MAILGUN_SIGNING_KEY = "mailgun-webhook-signing-key-for-tests"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:flowmail-ses-events"
INDEX = "test-email-events-*"


class _CertificateHost(BaseHTTPRequestHandler):
    """Stands in for sns.<region>.amazonaws.com: the signing certificate and SubscribeURL."""

    pem = b""
    confirmed: list[str] = []  # noqa: RUF012 - one per server, set at start

    def do_GET(self) -> None:
        if self.path.endswith(".pem"):
            body = self.pem
        elif self.path.startswith("/confirm"):
            self.confirmed.append(self.path)
            body = b"<ConfirmSubscriptionResponse/>"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@dataclass
class Service:
    url: str
    sendgrid: SendGridSigner
    sns: SnsSigner
    confirmed: list[str]
    cert_base: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path


def _start(env: dict[str, str], log: Path, url: str) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", "flowmail", "webhooks"], stdout=out,
                                   stderr=subprocess.STDOUT, env=env)

    def ready() -> bool:
        assert process.poll() is None, f"webhooks exited with {process.returncode}; see {log}"
        try:
            return requests.get(f"{url}/ready", timeout=1).ok
        except requests.RequestException:
            return False

    poll(ready, "the webhook service", timeout_s=90)
    return process


@contextmanager
def running_webhooks(settings, log_name: str) -> Iterator[str]:
    """`flowmail webhooks` with the session's settings on a port of its own; its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _start({**os.environ, "FLOWMAIL_WEBHOOK_PORT": str(port)},
                     settings.home / "logs" / log_name, url)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def service(stack, settings, tmp_path_factory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("webhooks")
    tls = ensure_tls(folder / "tls")
    handler = type("Host", (_CertificateHost,), {"confirmed": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.server_cert, tls.server_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cert_base = f"https://localhost:{server.server_address[1]}"
    sns = SnsSigner(f"{cert_base}/SimpleNotificationService-test.pem")
    handler.pem = sns.certificate_pem
    sendgrid = SendGridSigner()
    port = free_port()
    while settings.web_port <= port <= settings.web_port + 4:  # the worker's, maybe not bound yet
        port = free_port()
    env = {**os.environ, "FLOWMAIL_WEBHOOK_PORT": str(port),
           "FLOWMAIL_SENDGRID_WEBHOOK_KEY": sendgrid.public_b64,
           "FLOWMAIL_MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
           "FLOWMAIL_SNS_TOPIC_ARNS": TOPIC_ARN, "FLOWMAIL_SNS_CERT_HOST": "localhost",
           "FLOWMAIL_SNS_CA_FILE": str(tls.ca_file),
           "FLOWMAIL_WEBHOOK_MAX_BODY_BYTES": str(64 * 1024)}
    url = f"http://127.0.0.1:{port}"
    log = settings.home / "logs" / "test-webhooks.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    running = Service(url, sendgrid, sns, handler.confirmed, cert_base,
                      _start(env, log, url), env, log)
    yield running
    running.process.terminate()
    running.process.wait(timeout=30)
    server.shutdown()


def _echo(key: str, shop: str = "shop-1") -> dict[str, str]:
    return {"flowmail_key": key, "flowmail_shop": shop, "flowmail_type": "order_confirmation",
            "flowmail_priority": "transactional", "flowmail_campaign": "",
            "flowmail_variant": ""}


def _address() -> str:
    return f"fb.{uuid.uuid4().hex[:10]}@example.org"


def _marks(settings) -> dict[str, dict[int, int]]:
    return {topic: end_offsets(settings.kafka_bootstrap, topic)
            for topic in (DELIVERY, SUPPRESSIONS, DLQ, SEEN_TOKENS)}


def _deliveries(settings, since, key: str) -> list[dict]:
    found = []
    for message in read_topic(settings.kafka_bootstrap, DELIVERY, since[DELIVERY]):
        record = registry().decode(f"{DELIVERY}-value", message.value())
        if record["idempotency_key"] == key:
            found.append(record)
    return found


def _suppressions(settings, since, address: str) -> list[dict]:
    wanted = recipient_key(address, settings.pseudonym_secret.encode()).encode()
    return [json.loads(m.value()) for m in
            read_topic(settings.kafka_bootstrap, SUPPRESSIONS, since[SUPPRESSIONS])
            if m.key() == wanted]


def _order_outcome(settings, address: str) -> list[str]:
    """Publish an order for ``address``; the statuses of its email once one is indexed."""
    order = SAMPLES["order.placed"](1)
    order["customer"]["email"] = address
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("order.placed", order)
    hits = poll(lambda: search(settings.opensearch_url, INDEX, {
        "term": {"source_event_id": order["event_id"]}}), "an outcome")
    return [h["_source"]["status"] for h in hits]


def _sendgrid(service: Service, events: list[dict], timestamp: int | None = None,
              signer: SendGridSigner | None = None) -> requests.Response:
    body = json.dumps(events).encode()
    return requests.post(f"{service.url}/webhooks/sendgrid", data=body, timeout=30,
                         headers=(signer or service.sendgrid).headers(body, timestamp))


def test_signed_sendgrid_events_are_published_and_a_hard_bounce_suppresses(service, settings):
    key, address = uuid.uuid4().hex[:40], _address()
    since = _marks(settings)
    now = int(time.time())
    events = [{"event": "delivered", "email": address, "timestamp": now,
               "sg_event_id": f"d-{key}", **_echo(key)},
              {"event": "bounce", "type": "bounce", "email": address, "timestamp": now,
               "sg_event_id": f"b-{key}", "reason": "550 5.1.1 user unknown", **_echo(key)}]
    answer = _sendgrid(service, events)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"accepted": 2}
    records = _deliveries(settings, since, key)
    assert sorted((r["status"], r["bounce_type"]) for r in records) == [
        ("bounced", "hard"), ("delivered", None)]
    assert all(address not in json.dumps(r, default=str) for r in records)
    [change] = _suppressions(settings, since, address)
    assert (change["reason"], change["scope"], change["source"]) == (
        "hard_bounce", "*/*", "webhook:sendgrid")
    # the provider retries the same request: the same event ids, so nothing counts twice
    assert _sendgrid(service, events).status_code == 200
    again = _deliveries(settings, since, key)
    assert len({r["event_id"] for r in again}) == 2 and len(again) == 4


def test_forged_stale_oversized_and_malformed_sendgrid_requests_publish_nothing(
        service, settings):
    key, address = uuid.uuid4().hex[:40], _address()
    event = [{"event": "delivered", "email": address, "timestamp": int(time.time()),
              "sg_event_id": key, **_echo(key)}]
    since = _marks(settings)
    assert _sendgrid(service, event, signer=SendGridSigner()).status_code == 401  # other key
    assert _sendgrid(service, event, timestamp=int(time.time()) - 3600).status_code == 401
    body = json.dumps(event).encode()
    headers = service.sendgrid.headers(body)
    tampered = body.replace(b"delivered", b"bounce\x22,\x22x")
    assert requests.post(f"{service.url}/webhooks/sendgrid", data=tampered, headers=headers,
                         timeout=10).status_code == 401
    assert requests.post(f"{service.url}/webhooks/sendgrid", data=body, timeout=10,
                         headers={"Content-Type": "application/json"}).status_code == 401
    huge = json.dumps([{**event[0], "pad": "x" * 100_000}]).encode()
    assert requests.post(f"{service.url}/webhooks/sendgrid", data=huge, timeout=10,
                         headers=service.sendgrid.headers(huge)).status_code == 413
    assert _deliveries(settings, since, key) == []

    # genuine but unreadable: the dead-letter topic keeps it with its reason and source
    garbage = b"[{\"event\": \"delivered\", \"email\": \"not an address\"}"
    answer = requests.post(f"{service.url}/webhooks/sendgrid", data=garbage, timeout=10,
                           headers=service.sendgrid.headers(garbage))
    assert answer.status_code == 400
    letters = [headers_of(m) for m in read_topic(settings.kafka_bootstrap, DLQ, since[DLQ])]
    assert any(h.get("flowmail.source_topic") == "webhook:sendgrid" for h in letters), letters


def test_mailgun_tokens_are_accepted_once_even_across_a_restart(service, settings):
    key, address = uuid.uuid4().hex[:40], _address()
    body = mailgun_body(MAILGUN_SIGNING_KEY, {
        "event": "failed", "severity": "permanent", "id": f"mg-{key}",
        "timestamp": time.time(), "recipient": address, "user-variables": _echo(key),
        "delivery-status": {"code": 550, "description": "No such mailbox"}})
    since = _marks(settings)
    url = f"{service.url}/webhooks/mailgun"
    assert requests.post(url, json=body, timeout=30).status_code == 200
    assert requests.post(url, json=body, timeout=30).status_code == 406  # replayed
    forged = json.loads(json.dumps(body))
    forged["signature"]["token"] = "0" * 50
    assert requests.post(url, json=forged, timeout=10).status_code == 401
    stale = mailgun_body(MAILGUN_SIGNING_KEY, body["event-data"],
                         timestamp=int(time.time()) - 7200)
    assert requests.post(url, json=stale, timeout=10).status_code == 401
    [record] = _deliveries(settings, since, key)
    assert (record["status"], record["bounce_type"], record["provider"]) == (
        "bounced", "hard", "mailgun")
    assert [c["reason"] for c in _suppressions(settings, since, address)] == ["hard_bounce"]

    service.process.terminate()  # a new replica (or this one restarted) still knows it
    service.process.wait(timeout=30)
    service.process = _start(service.env, service.log, service.url)
    assert requests.post(url, json=body, timeout=30).status_code == 406
    assert len(_deliveries(settings, since, key)) == 1


def test_ses_through_sns_confirms_its_subscription_and_verifies_every_message(
        service, settings):
    url = f"{service.url}/webhooks/ses"
    confirm = service.sns.subscription(TOPIC_ARN, f"{service.cert_base}/confirm?t=1")
    assert requests.post(url, json=confirm, timeout=30).status_code == 200
    assert service.confirmed == ["/confirm?t=1"]

    key, address = uuid.uuid4().hex[:40], _address()
    since = _marks(settings)
    complaint = service.sns.notification(TOPIC_ARN, ses_event(
        "Complaint", address, _echo(key), complainedRecipients=[{"emailAddress": address}],
        complaintFeedbackType="abuse"), version="2")
    headers = {"x-amz-sns-message-type": "Notification"}
    assert requests.post(url, json=complaint, headers=headers, timeout=30).status_code == 200
    [record] = _deliveries(settings, since, key)
    assert (record["status"], record["provider"], record["reason"]) == (
        "complained", "ses", "abuse")
    assert [c["reason"] for c in _suppressions(settings, since, address)] == ["complaint"]

    other = _address()
    forged = dict(complaint, Message=complaint["Message"].replace(address, other))
    assert requests.post(url, json=forged, timeout=10).status_code == 401
    elsewhere = SnsSigner("https://evil.example/SimpleNotificationService-x.pem")
    assert requests.post(url, json=elsewhere.notification(TOPIC_ARN, json.loads(
        complaint["Message"])), timeout=10).status_code == 401
    other_topic = service.sns.notification("arn:aws:sns:eu-west-1:9:other",
                                           json.loads(complaint["Message"]))
    assert requests.post(url, json=other_topic, timeout=10).status_code == 403
    bad_confirm = service.sns.subscription(TOPIC_ARN, "https://evil.example/confirm")
    assert requests.post(url, json=bad_confirm, timeout=10).status_code == 401
    assert service.confirmed == ["/confirm?t=1"]
    assert _suppressions(settings, since, other) == []


def test_a_bounce_stops_the_next_email_and_opens_and_clicks_join_its_history(
        service, settings, worker, fake_apis):
    """The whole loop: a campaign email goes out through (fake) Mailgun with its echo
    fields; Mailgun's open, click and bounce events come back signed; OpenSearch shows them
    on the email's history; the next order mail to the address is suppressed."""
    user, _ = fresh_user(6)
    address = user["user"]["email"]
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("user.created", user)
    campaign = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=user["tags"])
    poll(lambda: search(settings.opensearch_url, INDEX, {"term": {
        "idempotency_key": idempotency_key(user["event_id"], "welcome", address)}}),
        "the welcome email, so the profile is there")
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("campaign.launched", campaign)
    key = idempotency_key(campaign["event_id"], "marketing_campaign", address)
    [mail] = poll(lambda: [m for m in fake_apis.accepted(fake_apis.mailgun_url)
                           if m["headers"].get("X-Flowmail-Idempotency-Key") == key],
                  "the campaign email at Mailgun")
    echo = mail["variables"]
    assert echo["flowmail_key"] == key and echo["flowmail_campaign"] == campaign["campaign_id"]

    def mailgun(kind: str, **extra: object) -> int:
        body = mailgun_body(MAILGUN_SIGNING_KEY, {
            "event": kind, "id": f"{kind}-{key}", "timestamp": time.time(),
            "recipient": address, "user-variables": echo, **extra})
        return requests.post(f"{service.url}/webhooks/mailgun", json=body,
                             timeout=30).status_code

    # flowmail's own tracking: the links and the pixel in the email as Mailgun sent it
    assert mail["options"]["tracking"] == "no"  # Mailgun's own tracking is off
    tracked = re.findall(r'(https?://[^"]+/t/([co])/[^"]+)"', mail["html"])
    pixel = next(u for u, kind in tracked if kind == "o")
    link = next(u for u, kind in tracked if kind == "c")
    base = settings.tracking_base_url

    def fetch(url: str, agent: str, method: str = "GET") -> requests.Response:
        return requests.request(method, url.replace(base, service.url), timeout=30,
                                allow_redirects=False, headers={"User-Agent": agent})

    assert fetch(pixel, "Mozilla/5.0").content[:6] == b"GIF89a"  # Apple Mail's prefetch
    browser = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17"
    assert fetch(pixel, browser).status_code == 200
    assert fetch(link, "Mozilla/5.0 (compatible; Barracuda Sentinel)", "HEAD"
                 ).status_code == 302
    answer = fetch(link, browser)
    assert answer.status_code == 302
    target = answer.headers["Location"]
    assert target.startswith("https://nordlicht.example/")  # a link that was in the email
    assert target in {campaign["variants"][0]["cta_url"], campaign["preferences_url"]}
    link_token, recipient_token = link.rsplit("/t/c/", 1)[1].split("/")
    forged = link.replace(link_token, link_token[:-3] + ("AAA" if link_token[-3:] != "AAA"
                                                         else "BBB"))
    assert fetch(forged, browser).status_code == 404
    other = link.replace(recipient_token, recipient_token[:-2] + "xx")
    assert fetch(other, browser).status_code == 404
    assert mailgun("failed", severity="permanent",
                   **{"delivery-status": {"code": 550, "description": "gone"}}) == 200

    def history() -> list[dict]:
        hits = search(settings.opensearch_url, INDEX, {"term": {"idempotency_key": key}})
        return [h["_source"] for h in hits]

    def seen() -> list[tuple]:
        found = sorted((d["status"], d.get("agent") or "") for d in history())
        return found if len(found) >= 6 else []

    assert poll(seen, "the email's history in OpenSearch") == [
        ("bounced", ""), ("clicked", "human"), ("clicked", "scanner"), ("opened", "human"),
        ("opened", "prefetch"), ("sent", "")]
    by_status = {(d["status"], d.get("agent")): d for d in history()}
    assert by_status[("clicked", "human")]["url"] == target
    assert by_status[("opened", "human")]["campaign_id"] == campaign["campaign_id"]
    assert by_status[("bounced", None)]["bounce_type"] == "hard"
    assert all(address not in json.dumps(d) for d in history())

    poll(lambda: _order_outcome(settings, address) == ["suppressed"],
         "the bounce to suppress the next order email", timeout_s=60, every_s=0.5)


def test_soft_bounces_add_up_to_a_suppression(service, settings, worker):
    """FLOWMAIL_SOFT_BOUNCE_LIMIT (3) soft bounces of one address suppress it; the changes
    are counted where every sender merges them."""
    address = _address()
    since = _marks(settings)
    for index in range(3):
        key = uuid.uuid4().hex[:40]
        notification = service.sns.notification(TOPIC_ARN, ses_event(
            "Bounce", address, _echo(key), bounceType="Transient", bounceSubType="MailboxFull",
            bouncedRecipients=[{"emailAddress": address, "status": "4.2.2"}]))
        assert requests.post(f"{service.url}/webhooks/ses", json=notification,
                             timeout=30).status_code == 200
        if index < 2:  # not yet: an order still goes out
            assert _order_outcome(settings, address) == ["sent"]
    assert [c.get("soft_bounce") for c in _suppressions(settings, since, address)] == [True] * 3
    poll(lambda: _order_outcome(settings, address) == ["suppressed"],
         "three soft bounces to suppress", timeout_s=60, every_s=0.5)


def test_a_token_accepted_by_one_replica_is_refused_by_another(service, settings):
    """Replicas share the tokens they accepted through webhooks.seen_tokens."""
    port = free_port()
    while settings.web_port <= port <= settings.web_port + 4:
        port = free_port()
    other_url = f"http://127.0.0.1:{port}"
    other = _start({**service.env, "FLOWMAIL_WEBHOOK_PORT": str(port)}, service.log, other_url)
    try:
        known = requests.get(f"{other_url}/ready", timeout=5).json()["seen_tokens"]
        key = uuid.uuid4().hex[:40]
        body = mailgun_body(MAILGUN_SIGNING_KEY, {
            "event": "delivered", "id": f"mg-{key}", "timestamp": time.time(),
            "recipient": _address(), "user-variables": _echo(key)})
        assert requests.post(f"{service.url}/webhooks/mailgun", json=body,
                             timeout=30).status_code == 200
        poll(lambda: requests.get(f"{other_url}/ready", timeout=5).json()["seen_tokens"]
             > known, "the other replica to read the accepted token")
        assert requests.post(f"{other_url}/webhooks/mailgun", json=body,
                             timeout=30).status_code == 406
    finally:
        other.terminate()
        other.wait(timeout=30)
