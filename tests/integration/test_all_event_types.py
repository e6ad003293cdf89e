"""Each of the seven domain event types, end to end on the real stack."""

import datetime as dt
import uuid

import pytest

from core.avro import registry
from flowmail.publisher import Publisher
from flowmail.samples import SAMPLES, campaign_launched, shipment_updated, user_created
from processors.keys import idempotency_key
from streams.topics import COMMAND_SUBJECT
from tests.integration.helpers import end_offsets, outbox, poll, read_topic

EXPECTED = {
    "user.created": ("email.critical", "welcome"),
    "user.password_reset_requested": ("email.critical", "password_reset"),
    "order.placed": ("email.transactional", "order_confirmation"),
    "shipment.updated": ("email.transactional", "shipping_update"),
    "invoice.issued": ("email.transactional", "invoice"),
    "support.replied": ("email.transactional", "support_response"),
}


def commands_for(settings, topic, since, source_event_ids):
    records = read_topic(settings.kafka_bootstrap, topic, since)
    decoded = [registry().decode(COMMAND_SUBJECT, r.value()) for r in records]
    return [c for c in decoded if c["source_event_id"] in source_event_ids]


def fresh_user(index):
    """A sample event for a never-seen user (unique id and address per test run)."""
    event = user_created(index)
    suffix = uuid.uuid4().hex[:8]
    event["user"]["user_id"] = f"cus-{suffix}"
    event["user"]["email"] = f"user.{suffix}@example.org"
    event["marketing_opt_in"] = True
    event["tags"] = [f"run-{suffix}"]
    return event, suffix


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_event_becomes_the_right_command_and_email(worker, settings, event_type):
    topic, email_type = EXPECTED[event_type]
    event = SAMPLES[event_type](3)
    since = end_offsets(settings.kafka_bootstrap, topic)
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish(event_type, event)
    [command] = poll(lambda: commands_for(settings, topic, since, {event["event_id"]}),
                     f"the {email_type} command on {topic}")
    assert command["email_type"] == email_type
    key = idempotency_key(event["event_id"], email_type, command["recipient"])
    [message] = poll(lambda: outbox(settings.outbox_dir).get(key), f"the {email_type} email")
    assert message["X-Flowmail-Email-Type"] == email_type
    assert "Nordlicht Outdoor" in message.get_body(("plain",)).get_content()


def test_shipment_without_address_uses_the_profile(worker, settings):
    created, _ = fresh_user(2)
    shipment = shipment_updated(2)  # no email: the router must find the profile
    shipment["user_id"] = created["user"]["user_id"]
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("user.created", created)
        publisher.flush()
        publisher.publish("shipment.updated", shipment)
    key = idempotency_key(shipment["event_id"], "shipping_update", created["user"]["email"])
    [message] = poll(lambda: outbox(settings.outbox_dir).get(key), "the shipping update")
    assert message["To"].addresses[0].addr_spec == created["user"]["email"]
    assert message["Content-Language"] == "fr"  # sample user 2 is French; the event has no locale


def test_campaign_fans_out_to_matching_opted_in_profiles(worker, settings, fake_apis):
    users = [fresh_user(i) for i in range(9)]
    tag = f"run-{users[0][1]}"
    for event, _ in users:
        event["tags"] = [tag]
    users[4][0]["marketing_opt_in"] = False  # must not get it
    since = end_offsets(settings.kafka_bootstrap, "email.marketing")
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event, _ in users:
            publisher.publish("user.created", event)
    welcome_keys = [idempotency_key(e["event_id"], "welcome", e["user"]["email"])
                    for e, _ in users]
    poll(lambda: all(k in outbox(settings.outbox_dir) for k in welcome_keys),
         "the welcome emails (profiles stored)")
    campaign = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=[tag])
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("campaign.launched", campaign)
    expected = {e["user"]["email"] for e, _ in users if e["marketing_opt_in"]}
    commands = poll(lambda: (lambda c: c if len(c) >= len(expected) else None)(
        commands_for(settings, "email.marketing", since, {campaign["event_id"]})),
        "one marketing command per opted-in matching profile")
    assert sorted(c["recipient"] for c in commands) == sorted(expected)
    # marketing goes through Mailgun (the fake): read what it accepted
    def delivered():
        accepted = [m for m in fake_apis.accepted(fake_apis.mailgun_url)
                    if m["headers"].get("X-Flowmail-Idempotency-Key") in keys]
        return accepted if len(accepted) == len(keys) else None

    keys = {idempotency_key(campaign["event_id"], "marketing_campaign", a) for a in expected}
    messages = poll(delivered, "the campaign emails at Mailgun")
    assert messages[0]["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert messages[0]["headers"]["List-Unsubscribe"].startswith(
        "<https://nordlicht.example/unsubscribe?token=")
    assert {m["subject"] for m in messages} <= {"Winter sale: 30 % off",
                                               "Your winter deal inside"}


def test_expired_password_reset_is_dead_lettered(worker, settings):
    from tests.integration.helpers import headers_of
    event = SAMPLES["user.password_reset_requested"](1)
    event["expires_at"] = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    since = end_offsets(settings.kafka_bootstrap, "email.dlq")
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("user.password_reset_requested", event)

    def found():
        for record in read_topic(settings.kafka_bootstrap, "email.dlq", since):
            headers = headers_of(record)
            if headers["flowmail.source_topic"] == "user.password_reset_requested":
                return headers
        return None

    assert poll(found, "the expired reset in the DLQ")["flowmail.reason"] == "expired"


def test_a_campaign_reaches_only_its_shops_customers(worker, settings):
    """Two shops, one tag, and user ids that collide across the shops: shop A's campaign
    goes to shop A's opted-in customers only."""
    ours = [fresh_user(i) for i in range(4)]
    tag = f"run-{ours[0][1]}"
    theirs = []
    for event, suffix in ours:
        event["tags"] = [tag]
        other, _ = fresh_user(1)
        other["user"]["user_id"] = event["user"]["user_id"]  # same user id, other shop
        other["user"]["email"] = f"other.{suffix}@example.net"
        other["shop"] = {**other["shop"], "shop_id": "shop-777", "name": "Other Shop"}
        other["tags"] = [tag]
        theirs.append(other)
    since = end_offsets(settings.kafka_bootstrap, "email.marketing")
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event in [e for e, _ in ours] + theirs:
            publisher.publish("user.created", event)
    welcome = [idempotency_key(e["event_id"], "welcome", e["user"]["email"])
               for e in [e for e, _ in ours] + theirs]
    poll(lambda: all(k in outbox(settings.outbox_dir) for k in welcome),
         "both shops' welcome emails (profiles stored)")
    campaign = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=[tag])
    first = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=[tag])
    first["shop"] = {**first["shop"], "shop_id": "shop-777", "name": "Other Shop"}
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("campaign.launched", campaign)
        publisher.publish("campaign.launched", first)
    expected = {e["user"]["email"] for e, _ in ours}
    expected_other = {e["user"]["email"] for e in theirs}
    ids = {campaign["event_id"], first["event_id"]}
    commands = poll(lambda: (lambda c: c if len(c) >= 8 else None)(
        commands_for(settings, "email.marketing", since, ids)), "both campaigns' commands")
    by_campaign = {cid: sorted(c["recipient"] for c in commands if c["source_event_id"] == cid)
                   for cid in ids}
    assert by_campaign[campaign["event_id"]] == sorted(expected)
    assert by_campaign[first["event_id"]] == sorted(expected_other)
