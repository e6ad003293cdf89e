"""Anomaly alerts on the real stack: delivery events of a provider failing a fifth of its
sends and of a domain bouncing 8 % reach the session worker's sink; the detector raises each
alert once on email.alerts and on both channels, and clears it once when the rates recover;
a domain with one bounce in three emails raises nothing."""

from __future__ import annotations

import json
import time
import uuid

import requests
from confluent_kafka import Producer

from core.avro import registry
from core.kafka_config import producer_config
from core.vocab import DeliveryStatus
from processors.commands import DeliveryEvent
from processors.keys import idempotency_key
from processors.operator_events import alert_event
from streams.topics import ALERTS, DELIVERY
from tests.integration.conftest import OPERATOR_ALERTS
from tests.integration.helpers import end_offsets, outbox, poll, read_topic, worker_ports
from tests.integration.test_delivery import order_for_new_address, publish, statuses


def _publish(settings, statuses: list[tuple[str, str, str]]) -> None:
    """(status, provider, recipient domain) delivery events, as the senders write them."""
    producer = Producer(producer_config(settings.kafka_bootstrap))
    for status, provider, domain in statuses:
        key = uuid.uuid4().hex[:40]
        event = DeliveryEvent(
            event_id=uuid.uuid4().hex, status=DeliveryStatus(status), idempotency_key=key,
            command_id="", email_type="order_confirmation", priority="transactional",
            locale="en", shop_id="", recipient_key="r" * 32, recipient_domain=domain,
            attempt=1, source_event_id="", occurred_at=int(time.time() * 1000),
            provider=provider)
        producer.produce(DELIVERY, key=key.encode(), value=registry().encode(
            f"{DELIVERY}-value", event.to_record(), check=False))
    assert producer.flush(30) == 0


def _alerts(settings, since, key: str) -> list[dict]:
    found = [json.loads(m.value()) for m in read_topic(settings.kafka_bootstrap, ALERTS,
                                                       since)]
    return [a for a in found if a.get("type") == "anomaly" and a.get("key") == key]


def test_alerts_are_raised_once_and_cleared_once(worker, settings, alert_receiver):
    provider, domain, quiet = (f"p-{uuid.uuid4().hex[:6]}", f"d-{uuid.uuid4().hex[:6]}.test",
                               f"q-{uuid.uuid4().hex[:6]}.test")
    since = end_offsets(settings.kafka_bootstrap, ALERTS)
    _publish(settings, [("sent", provider, "x.test")] * 160
             + [("failed", provider, "x.test")] * 40          # 20 % of its attempts
             + [("sent", "smtp", domain)] * 150 + [("bounced", "smtp", domain)] * 12  # 8 %
             + [("sent", "smtp", quiet)] * 2 + [("bounced", "smtp", quiet)])  # too few
    poll(lambda: _alerts(settings, since, provider) and _alerts(settings, since, domain),
         "both alerts on email.alerts", timeout_s=60)
    # raised as soon as the sums of the batches the detector has seen pass the threshold with
    # enough emails; the sink's batches split the run across partitions, so the rate at that
    # moment is over the threshold but not necessarily the whole run's
    [failing] = _alerts(settings, since, provider)
    assert (failing["rule"], failing["state"]) == ("provider_failure_rate", "raised")
    assert failing["rate"] > settings.alert_failure_rate
    assert failing["sample"] >= settings.alert_min_sample
    [bouncing] = _alerts(settings, since, domain)
    assert (bouncing["rule"], bouncing["dimension"]) == ("bounce_rate", "recipient_domain")
    assert bouncing["rate"] > settings.alert_bounce_rate
    assert bouncing["sample"] >= settings.alert_min_sample
    # by email, through flowmail itself (critical mail to FLOWMAIL_ALERT_EMAILS)
    event = alert_event(settings.app_id, failing, "", [OPERATOR_ALERTS], {})
    key = idempotency_key(event["event_id"], "operator_alert", OPERATOR_ALERTS)
    [mail] = poll(lambda: outbox(settings.outbox_dir).get(key), "the alert by email")
    assert "Alert: provider_failure_rate" in mail["Subject"] and provider in mail["Subject"]
    hooked = poll(lambda: [a for a in alert_receiver.at("/hook") if a["key"] == provider],
                  "the JSON channel")
    assert [a["state"] for a in hooked] == ["raised"]
    poll(lambda: any(provider in m["text"] and "RAISED" in m["text"]
                     for m in alert_receiver.at("/slack")), "the Slack channel")

    # more of the same: nothing said again; then recovery clears each once
    _publish(settings, [("failed", provider, "x.test")] * 10)
    _publish(settings, [("sent", provider, "x.test")] * 600 + [("sent", "smtp", domain)] * 300)
    poll(lambda: len(_alerts(settings, since, provider)) == 2
         and len(_alerts(settings, since, domain)) == 2, "both alerts cleared", timeout_s=60)
    assert [a["state"] for a in _alerts(settings, since, provider)] == ["raised", "cleared"]
    assert [a["state"] for a in _alerts(settings, since, domain)] == ["raised", "cleared"]
    assert _alerts(settings, since, quiet) == []


def _providers_out(settings) -> set[str]:
    """What every process of the session worker has taken out of its chains."""
    out: list[set[str]] = []
    for port in worker_ports(settings):
        health = requests.get(f"http://127.0.0.1:{port}/health", timeout=5).json()
        out.append(set(health.get("providers_out", [])))
    return set.intersection(*out) if out else set()


def _alert(settings, state: str) -> None:
    """The record the detector writes on email.alerts (its rule is tested above)."""
    alert = {"type": "anomaly", "id": "provider_failure_rate/provider/sendgrid",
             "rule": "provider_failure_rate", "dimension": "provider", "key": "sendgrid",
             "state": state, "rate": 0.2 if state == "raised" else None, "threshold": 0.1,
             "sample": 200, "at": int(time.time() * 1000)}
    producer = Producer(producer_config(settings.kafka_bootstrap))
    producer.produce(ALERTS, key=alert["id"].encode(), value=json.dumps(alert).encode())
    assert producer.flush(30) == 0


def test_a_failing_provider_is_taken_out_until_its_alert_clears(worker, settings, fake_apis):
    """While SendGrid's failure-rate alert is raised, the chains skip it, healthy or not;
    once it clears, mail flows through it again."""
    _alert(settings, "raised")
    poll(lambda: "sendgrid" in _providers_out(settings), "sendgrid out in every process")
    fake_apis.reset()  # SendGrid answers again, and its breaker would let a probe through
    try:
        for index in range(3):
            order = order_for_new_address(700 + index)
            publish(settings, "order.placed", order)
            assert poll(lambda o=order: statuses(settings, o), "the order's outcome") == [
                ("sent", "smtp")]
        _alert(settings, "cleared")
        poll(lambda: "sendgrid" not in _providers_out(settings), "sendgrid back in")

        def through_sendgrid() -> bool:
            probe = order_for_new_address(710)
            publish(settings, "order.placed", probe)
            return poll(lambda: statuses(settings, probe), "the probe") == [
                ("sent", "sendgrid")]

        poll(through_sendgrid, "mail through SendGrid again", timeout_s=60, every_s=0.5)
    finally:
        _alert(settings, "cleared")  # whatever happened, no other test finds sendgrid out
        fake_apis.primary_down()
