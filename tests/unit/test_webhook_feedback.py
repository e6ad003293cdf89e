"""Webhook signatures as each provider signs them, and provider events in their documented
shapes mapped to delivery events and suppressions."""

from __future__ import annotations

import json
import time

import pytest

from core.catalogue import EmailType
from core.vocab import DeliveryStatus, SuppressionReason
from processors.errors import RejectedInput
from processors.feedback import (
    FeedbackError,
    ProviderEvent,
    from_ses_tag_value,
    mailgun_events,
    no_such_user,
    sendgrid_events,
    ses_events,
    ses_tag_value,
    suppression_change,
    suppression_of,
    to_delivery_event,
)
from processors.suppression import merge, parse_change, soft_bounce, suppressing
from processors.webhook_signatures import (
    SNS_HOST_PATTERN,
    SignatureError,
    sns_cert_url_allowed,
    verify_mailgun,
    verify_sendgrid,
    verify_sns,
)
from tests.webhook_signing import SendGridSigner, SnsSigner, mailgun_body, ses_event

ECHO = {"flowmail_key": "k" * 40, "flowmail_shop": "shop-7", "flowmail_type":
        "marketing_campaign", "flowmail_priority": "marketing", "flowmail_campaign": "spring",
        "flowmail_variant": "B"}
NOW = time.time()
STAMP = 1_800_000_000  # signed at, and checked at: a fixed moment, not the clock


def test_a_sendgrid_signature_verifies_and_any_change_breaks_it():
    signer = SendGridSigner()
    body = b'[{"event":"delivered"}]'
    headers = signer.headers(body, timestamp=STAMP)
    args = (headers["X-Twilio-Email-Event-Webhook-Signature"],
            headers["X-Twilio-Email-Event-Webhook-Timestamp"])
    verify_sendgrid(signer.public_b64, *args, body, STAMP, 900)
    with pytest.raises(SignatureError, match="does not match"):
        verify_sendgrid(signer.public_b64, *args, body + b" ", STAMP, 900)
    with pytest.raises(SignatureError, match="does not match"):
        verify_sendgrid(SendGridSigner().public_b64, *args, body, STAMP, 900)
    with pytest.raises(SignatureError, match="away from now"):
        verify_sendgrid(signer.public_b64, *args, body, STAMP + 3600, 900)
    with pytest.raises(SignatureError, match="missing"):
        verify_sendgrid(signer.public_b64, "", args[1], body, STAMP, 900)
    with pytest.raises(SignatureError, match="base64"):
        verify_sendgrid(signer.public_b64, "not base64!", args[1], body, STAMP, 900)


def test_a_mailgun_signature_is_the_hmac_of_timestamp_and_token():
    body = mailgun_body("signing-key", {}, timestamp=STAMP)
    assert verify_mailgun("signing-key", body["signature"], STAMP, 900) == \
        body["signature"]["token"]
    with pytest.raises(SignatureError, match="does not match"):
        verify_mailgun("other-key", body["signature"], STAMP, 900)
    forged = dict(body["signature"], token="another-token")
    with pytest.raises(SignatureError, match="does not match"):
        verify_mailgun("signing-key", forged, STAMP, 900)
    stale = mailgun_body("signing-key", {}, timestamp=STAMP - 3600)
    with pytest.raises(SignatureError, match="away from now"):
        verify_mailgun("signing-key", stale["signature"], STAMP, 900)
    with pytest.raises(SignatureError, match="missing"):
        verify_mailgun("signing-key", "not an object", STAMP, 900)


@pytest.mark.parametrize("version", ["1", "2"])
def test_an_sns_message_verifies_with_its_certificate_in_both_signature_versions(version):
    signer = SnsSigner("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-x.pem")
    message = signer.notification("arn:aws:sns:eu-west-1:1:ses", {"eventType": "Open"},
                                  version)
    verify_sns(message, signer.certificate_pem)
    for field, value in (("Message", "{}"), ("TopicArn", "arn:other"), ("Type", "Notification ")):
        with pytest.raises(SignatureError):
            verify_sns(dict(message, **{field: value}), signer.certificate_pem)
    other = SnsSigner(signer.cert_url)
    with pytest.raises(SignatureError, match="does not match"):
        verify_sns(message, other.certificate_pem)
    with pytest.raises(SignatureError, match="SignatureVersion"):
        verify_sns(dict(message, SignatureVersion="3"), signer.certificate_pem)


@pytest.mark.parametrize("url, allowed", [
    ("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem", True),
    ("https://sns.cn-north-1.amazonaws.com.cn/x.pem", True),
    ("http://sns.eu-west-1.amazonaws.com/x.pem", False),
    ("https://sns.eu-west-1.amazonaws.com.evil.example/x.pem", False),
    ("https://evil.example/sns.eu-west-1.amazonaws.com/x.pem", False),
    ("https://user@sns.eu-west-1.amazonaws.com/x.pem", False),
    ("https://sns.eu-west-1.amazonaws.com/x.txt", False),
])
def test_the_certificate_url_must_be_https_on_an_sns_host(url, allowed):
    assert sns_cert_url_allowed(url, SNS_HOST_PATTERN) is allowed


def test_sendgrid_events_map_to_the_vocabulary_with_their_echo_fields():
    body = [
        {"event": "processed", "email": "a@example.org", "timestamp": NOW, **ECHO},
        {"event": "delivered", "email": "a@example.org", "timestamp": NOW,
         "sg_event_id": "e1", "sg_message_id": "m1.f", **ECHO},
        {"event": "bounce", "type": "bounce", "email": "a@example.org", "timestamp": NOW,
         "sg_event_id": "e2", "reason": "550 5.1.1 no such user", "status": "5.1.1", **ECHO},
        {"event": "bounce", "type": "blocked", "email": "a@example.org", "timestamp": NOW,
         "sg_event_id": "e3", **ECHO},
        {"event": "click", "email": "a@example.org", "timestamp": NOW, "sg_event_id": "e4",
         "url": "https://shop.example/sale", **ECHO},
        {"event": "spamreport", "email": "a@example.org", "timestamp": NOW, "sg_event_id": "e5",
         **ECHO},
    ]
    events = sendgrid_events(body)
    assert [(e.status, e.bounce_type) for e in events] == [
        (DeliveryStatus.DELIVERED, None), (DeliveryStatus.BOUNCED, "hard"),
        (DeliveryStatus.BOUNCED, "soft"), (DeliveryStatus.CLICKED, None),
        (DeliveryStatus.COMPLAINED, None)]
    assert events[1].reason == "550 5.1.1 no such user 5.1.1"
    assert events[3].url == "https://shop.example/sale"
    assert [suppression_of(e) for e in events] == [
        None, SuppressionReason.HARD_BOUNCE, None, None, SuppressionReason.COMPLAINT]
    delivery = to_delivery_event(events[3], b"secret")
    assert (delivery.idempotency_key, delivery.shop_id, delivery.campaign_id, delivery.variant,
            delivery.attempt, delivery.recipient_domain) == ("k" * 40, "shop-7", "spring", "B",
                                                             0, "example.org")
    assert "a@example.org" not in json.dumps(delivery.to_record())
    # a provider retry of the same event has the same id; another event does not
    assert to_delivery_event(sendgrid_events(body)[3], b"secret").event_id == delivery.event_id
    assert len({to_delivery_event(e, b"s").event_id for e in events}) == len(events)


def test_mailgun_events_map_failures_by_severity():
    def event(kind, **extra):
        return mailgun_events({"event-data": {
            "event": kind, "id": f"id-{kind}", "timestamp": NOW, "recipient": "b@example.org",
            "user-variables": ECHO, "message": {"headers": {"message-id": "<m@mg>"}}, **extra}})

    [hard] = event("failed", severity="permanent",
                   **{"delivery-status": {"code": 550, "description": "mailbox unavailable"}})
    assert (hard.status, hard.bounce_type, hard.reason) == (
        DeliveryStatus.BOUNCED, "hard", "mailbox unavailable 550")
    assert suppression_of(hard) is SuppressionReason.HARD_BOUNCE
    [temporary] = event("failed", severity="temporary")
    assert temporary.status is DeliveryStatus.DEFERRED and suppression_of(temporary) is None
    [opened] = event("opened")
    assert opened.status is DeliveryStatus.OPENED and opened.provider_message_id == "<m@mg>"
    [unsubscribed] = event("unsubscribed")
    assert suppression_of(unsubscribed) is SuppressionReason.UNSUBSCRIBE
    assert event("accepted") == []
    with pytest.raises(FeedbackError):
        mailgun_events({"signature": {}})


def test_ses_events_carry_their_tags_and_every_bounced_recipient():
    echo = {k: ses_tag_value(v) for k, v in ECHO.items()}
    bounce = ses_event("Bounce", "c@example.org", echo, bounceType="Permanent",
                       bouncedRecipients=[{"emailAddress": "c@example.org",
                                           "diagnosticCode": "smtp; 550 5.1.1 user unknown"},
                                          {"emailAddress": "d@example.org"}])
    events = ses_events(bounce, "sns-1")
    assert [(e.recipient, e.bounce_type, e.event_ref) for e in events] == [
        ("c@example.org", "hard", "sns-1/0"), ("d@example.org", "hard", "sns-1/1")]
    assert events[0].echo == ECHO
    [click] = ses_events(ses_event("Click", "c@example.org", echo, link="https://x.example/"),
                         "sns-2")
    assert (click.status, click.url) == (DeliveryStatus.CLICKED, "https://x.example/")
    [transient] = ses_events(ses_event("Bounce", "c@example.org", echo, bounceType="Transient",
                                       bouncedRecipients=[{"emailAddress": "c@example.org"}]),
                             "sns-3")
    assert transient.bounce_type == "soft" and suppression_of(transient) is None
    with pytest.raises(FeedbackError):
        ses_events({"eventType": "Bounce"}, "sns-4")


@pytest.mark.parametrize("value", ["shop-1", "Shop Ä/1", "b64_looks-encoded", "", "x" * 200])
def test_ses_tag_values_survive_the_tag_alphabet(value):
    coded = ses_tag_value(value)
    assert all(c.isalnum() or c in "_-" for c in coded)
    assert from_ses_tag_value(coded) == value


@pytest.mark.parametrize("code, text, gone", [
    (550, "5.1.1 <x>: Recipient address rejected: User unknown in virtual mailbox table", True),
    (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found", True),
    (550, "5.7.1 Message rejected as spam: user unknown to us", False),  # policy, not address
    (550, "No such user here", True),
    (550, "Requested action not taken: mailbox unavailable", False),  # RFC 5321's generic text
    (452, "4.2.2 Mailbox full", False),
    (554, "5.1.2 Host unknown", True),
])
def test_a_send_time_refusal_is_a_hard_bounce_only_when_the_address_is_gone(code, text, gone):
    assert no_such_user(code, text) is gone


def test_soft_bounces_add_up_to_a_suppression_within_the_window_only():
    day = 24 * 3600 * 1000
    entry = None
    for at in (0, 8 * day, 9 * day):  # the first falls out of the 7-day window
        entry = merge(entry, parse_change(soft_bounce(at, "webhook:ses")))
        assert suppressing(entry, "shop-1", EmailType.ORDER_CONFIRMATION) is None
    assert entry == {"soft_bounces": [8 * day, 9 * day]}
    entry = merge(entry, soft_bounce(10 * day, "webhook:ses"))
    assert suppressing(entry, "shop-1", EmailType.ORDER_CONFIRMATION) == "soft_bounces (*/*)"
    assert suppressing(entry, "shop-1", EmailType.PASSWORD_RESET) is None
    assert "soft_bounces" not in entry
    # a limit from settings
    assert suppressing(merge(None, soft_bounce(1, "x"), soft_limit=1), "s",
                       EmailType.INVOICE) == "soft_bounces (*/*)"
    with pytest.raises(RejectedInput):
        parse_change({"soft_bounce": True})


def test_each_provider_event_makes_the_suppression_change_it_should():
    def event(status, bounce_type=None, shop="shop-7"):
        return ProviderEvent("ses", status, "r", "a@example.org", 5, dict(ECHO, flowmail_shop=shop),
                             bounce_type=bounce_type)

    soft = suppression_change(event(DeliveryStatus.BOUNCED, "soft"))
    assert soft == soft_bounce(5, "webhook:ses")
    assert suppression_change(event(DeliveryStatus.BOUNCED, "hard"))["scope"] == "*/*"
    assert suppression_change(event(DeliveryStatus.UNSUBSCRIBED))["scope"] == "shop-7/marketing"
    assert suppression_change(event(DeliveryStatus.UNSUBSCRIBED, shop="")) is None
    assert suppression_change(event(DeliveryStatus.OPENED)) is None
