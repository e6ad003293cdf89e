"""Delivery on the real stack with the fake SaaS APIs: failover, breaker recovery, retries,
permanent failures and alerts, suppression and one-click unsubscribe."""

from __future__ import annotations

import json
import uuid

import requests

from core.vocab import SuppressionReason
from flowmail.publisher import Publisher
from flowmail.samples import SAMPLES, campaign_launched
from flowmail.suppression import suppress_address
from processors.keys import idempotency_key
from tests.integration.helpers import end_offsets, headers_of, outbox, poll, read_topic, search
from tests.integration.test_all_event_types import fresh_user

INDEX = "test-email-events-*"


def publish(settings, topic, event):
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish(topic, event)


def statuses(settings, event):
    hits = search(settings.opensearch_url, INDEX,
                  {"term": {"source_event_id": event["event_id"]}})
    return sorted((h["_source"]["status"], h["_source"].get("provider") or "") for h in hits)


def order_for_new_address(index=1):
    event = SAMPLES["order.placed"](index)
    event["customer"]["email"] = f"buyer.{uuid.uuid4().hex[:10]}@example.org"
    return event


def key(event, email_type="order_confirmation"):
    person = event.get("customer") or event.get("user")
    return idempotency_key(event["event_id"], email_type, person["email"])


def test_primary_down_mail_fails_over_and_the_breaker_recovers(worker, settings, fake_apis):
    events = [order_for_new_address(i) for i in range(4)]  # > FLOWMAIL_BREAKER_FAILURES
    for event in events:
        publish(settings, "order.placed", event)
    for event in events:
        poll(lambda e=event: outbox(settings.outbox_dir).get(key(e)),
             "the email via SMTP (failover)")
        poll(lambda e=event: statuses(settings, e) == [("sent", "smtp")],
             "a sent event from smtp")
    poll(lambda: 'flowmail_provider_breaker_open{provider="sendgrid"} 1.0' in requests.get(
        f"http://127.0.0.1:{settings.web_port}/metrics", timeout=5).text,
        "the SendGrid breaker to be reported open", timeout_s=15)

    fake_apis.reset()  # SendGrid recovers; after the 1 s cool-down a probe closes the breaker
    try:
        def through_sendgrid():
            probe = order_for_new_address(2)
            publish(settings, "order.placed", probe)
            found = poll(lambda: statuses(settings, probe), "the probe's outcome")
            return found == [("sent", "sendgrid")]

        poll(through_sendgrid, "mail to flow through SendGrid again", timeout_s=60, every_s=0.5)
        assert fake_apis.accepted(fake_apis.sendgrid_url)
    finally:
        fake_apis.primary_down()


def test_transient_failures_are_retried_without_loss(worker, settings, fake_apis):
    user, _ = fresh_user(3)
    fake_apis.faults(fake_apis.mailgun_url, status=503, count=2)  # marketing has only Mailgun
    publish(settings, "user.created", user)  # a profile for the campaign
    poll(lambda: outbox(settings.outbox_dir).get(key(user, "welcome")), "the welcome email")
    campaign = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=user["tags"])
    publish(settings, "campaign.launched", campaign)
    found = poll(lambda: (lambda s: s if ("sent", "mailgun") in s else None)(
        statuses(settings, campaign)), "the campaign email after its retries", timeout_s=60)
    assert [s for s, _ in found].count("deferred") == 2 and found.count(("sent", "mailgun")) == 1


def test_429_with_retry_after_slows_down_and_loses_nothing(worker, settings, fake_apis):
    user, _ = fresh_user(4)
    publish(settings, "user.created", user)
    poll(lambda: outbox(settings.outbox_dir).get(key(user, "welcome")), "the welcome email")
    fake_apis.faults(fake_apis.mailgun_url, status=429, count=1, retry_after=2)
    campaign = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=user["tags"])
    publish(settings, "campaign.launched", campaign)
    found = poll(lambda: (lambda s: s if ("sent", "mailgun") in s else None)(
        statuses(settings, campaign)), "the campaign email after the 429", timeout_s=60)
    hits = search(settings.opensearch_url, INDEX, {"term": {"source_event_id":
                                                            campaign["event_id"]}})
    deferred = [h["_source"] for h in hits if h["_source"]["status"] == "deferred"]
    sent = [h["_source"] for h in hits if h["_source"]["status"] == "sent"]
    assert len(deferred) == 1 and "429" in deferred[0]["reason"]
    assert sent[0]["attempt"] == 2 and found.count(("sent", "mailgun")) == 1


def test_permanent_failure_of_critical_mail_is_dead_lettered_and_alerted(worker, settings,
                                                                         fake_apis):
    fake_apis.reset()
    fake_apis.faults(fake_apis.sendgrid_url, status=400, count=-1)  # the message is refused
    dlq_since = end_offsets(settings.kafka_bootstrap, "email.dlq")
    alerts_since = end_offsets(settings.kafka_bootstrap, "email.alerts")
    try:
        event = SAMPLES["user.password_reset_requested"](2)
        publish(settings, "user.password_reset_requested", event)
        poll(lambda: ("failed", "") in statuses(settings, event), "a failed delivery event")
    finally:
        fake_apis.primary_down()
    alerts = [json.loads(r.value()) for r in read_topic(settings.kafka_bootstrap,
                                                         "email.alerts", alerts_since)]
    assert any(a["idempotency_key"] == key(event, "password_reset") and
               a["type"] == "critical_email_failed" for a in alerts)
    letters = [headers_of(r) for r in read_topic(settings.kafka_bootstrap, "email.dlq",
                                                 dlq_since)]
    assert any(h["flowmail.stage"] == "sender.critical" and
               h["flowmail.reason"] == "permanent_provider_error" for h in letters)
    assert key(event, "password_reset") not in outbox(settings.outbox_dir)


def test_suppressed_address_gets_no_order_mail_but_still_its_password_reset(worker, settings):
    order = order_for_new_address(3)
    address = order["customer"]["email"]
    suppress_address(settings.kafka_bootstrap, address, settings.pseudonym_secret,
                     SuppressionReason.HARD_BOUNCE)

    def suppressed():
        attempt = dict(order, event_id=str(uuid.uuid4()))
        publish(settings, "order.placed", attempt)
        return poll(lambda: statuses(settings, attempt), "an outcome") == [("suppressed", "")]

    poll(suppressed, "the suppression to take effect", timeout_s=30, every_s=0.5)
    reset = SAMPLES["user.password_reset_requested"](3)
    reset["user"]["email"] = address
    publish(settings, "user.password_reset_requested", reset)
    poll(lambda: outbox(settings.outbox_dir).get(key(reset, "password_reset")),
         "the password reset, which is never suppressed")


def test_one_click_unsubscribe_stops_the_next_campaign(worker, settings, fake_apis):
    user, _ = fresh_user(5)
    publish(settings, "user.created", user)
    poll(lambda: outbox(settings.outbox_dir).get(key(user, "welcome")), "the welcome email")
    first = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=user["tags"])
    publish(settings, "campaign.launched", first)
    first_key = idempotency_key(first["event_id"], "marketing_campaign", user["user"]["email"])
    [mail] = poll(lambda: [m for m in fake_apis.accepted(fake_apis.mailgun_url)
                           if m["headers"].get("X-Flowmail-Idempotency-Key") == first_key],
                  "the first campaign email")
    link = mail["headers"]["List-Unsubscribe"].strip("<>")
    token = link.split("token=")[1]
    base = f"http://127.0.0.1:{settings.web_port}/unsubscribe/"
    assert requests.post(base, params={"token": token + "x"}, timeout=5).status_code == 403
    answer = requests.post(base, params={"token": token},
                           data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert answer.status_code == 200

    def next_campaign_suppressed():
        campaign = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=user["tags"])
        publish(settings, "campaign.launched", campaign)
        return poll(lambda: statuses(settings, campaign), "an outcome") == [("suppressed", "")]

    poll(next_campaign_suppressed, "the unsubscribe to take effect", timeout_s=30, every_s=0.5)

    # the unsubscribe was from this shop's marketing: its order confirmations still arrive
    order = SAMPLES["order.placed"](1)
    order["customer"]["email"] = user["user"]["email"]
    order["shop"] = first["shop"]
    publish(settings, "order.placed", order)
    poll(lambda: outbox(settings.outbox_dir).get(key(order, "order_confirmation")),
         "the order confirmation after a marketing unsubscribe")


def test_an_smtp_no_such_user_at_send_time_is_a_hard_bounce_that_suppresses(worker, settings):
    """The mail catcher refuses ``nosuchuser*`` at RCPT with 550 5.1.1, as postfix does."""
    order = SAMPLES["order.placed"](4)
    order["customer"]["email"] = f"nosuchuser.{uuid.uuid4().hex[:10]}@example.org"
    publish(settings, "order.placed", order)
    outcome = poll(lambda: (s := statuses(settings, order)) and "bounced" in dict(s) and s,
                   "the bounce at send time")
    assert ("bounced", "smtp") in outcome and ("failed", "") in outcome
    [bounced] = [h["_source"] for h in search(settings.opensearch_url, INDEX, {
        "bool": {"must": [{"term": {"source_event_id": order["event_id"]}},
                          {"term": {"status": "bounced"}}]}})]
    assert bounced["bounce_type"] == "hard" and "550" in bounced["reason"]

    def next_order_suppressed():
        again = dict(order, event_id=str(uuid.uuid4()))
        publish(settings, "order.placed", again)
        return poll(lambda: statuses(settings, again), "an outcome") == [("suppressed", "")]

    poll(next_order_suppressed, "the bounce to suppress the next order", timeout_s=30,
         every_s=0.5)
