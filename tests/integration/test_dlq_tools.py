"""flowmail dlq inspect / replay: find a dead letter, fix the cause, replay it, mail goes out."""

import subprocess
import sys

from flowmail.deadletters import read
from flowmail.publisher import Publisher
from flowmail.samples import shipment_updated
from processors.keys import idempotency_key
from tests.integration.helpers import end_offsets, outbox, poll
from tests.integration.test_all_event_types import fresh_user


def flowmail(*args):
    return subprocess.run([sys.executable, "-m", "flowmail", *args], capture_output=True,
                          text=True, timeout=120)


def test_replay_after_the_missing_profile_arrives(worker, settings):
    created, _ = fresh_user(1)
    shipment = shipment_updated(1)
    shipment["user_id"] = created["user"]["user_id"]  # no email, and no profile yet
    start = end_offsets(settings.kafka_bootstrap, "email.dlq")[0]
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("shipment.updated", shipment)

    def dead_letter():
        return next((letter for letter in read(settings.kafka_bootstrap, start)
                     if letter.header("source_topic") == "shipment.updated"), None)

    letter = poll(dead_letter, "the shipment in the DLQ")
    assert letter.header("reason") == "missing_field"

    listing = flowmail("dlq", "inspect", "--start", str(start), "--reason", "missing_field")
    assert listing.returncode == 0
    assert f"shipment.updated[{letter.header('source_partition')}]" in listing.stdout
    assert created["user"]["email"] not in listing.stdout  # no personal data printed

    with Publisher(settings.kafka_bootstrap) as publisher:  # the fix: the profile arrives
        publisher.publish("user.created", created)
    welcome = idempotency_key(created["event_id"], "welcome", created["user"]["email"])
    poll(lambda: outbox(settings.outbox_dir).get(welcome), "the welcome email")

    dry = flowmail("dlq", "replay", "--offset", str(letter.offset), "--dry-run")
    assert dry.returncode == 0 and "would be replayed" in dry.stdout
    replayed = flowmail("dlq", "replay", "--offset", str(letter.offset))
    assert replayed.returncode == 0, replayed.stderr
    key = idempotency_key(shipment["event_id"], "shipping_update", created["user"]["email"])
    [message] = poll(lambda: outbox(settings.outbox_dir).get(key), "the replayed shipment email")
    assert message["X-Flowmail-Email-Type"] == "shipping_update"


def test_replay_needs_a_selection_and_a_real_offset(stack):
    assert flowmail("dlq", "replay").returncode != 0
    result = flowmail("dlq", "replay", "--offset", "99999999")
    assert result.returncode != 0 and "no dead letter" in result.stderr
