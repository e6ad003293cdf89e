"""The batch engine's state lives in Kafka changelogs: after a kill -9 (the local store gone
with the process) and with the partitions handed over to other workers, every command
replayed from the topic is recognised as sent and none is sent again (the ledgers), and every
campaign reaches each stored profile once (the profiles).
"""

from __future__ import annotations

import os
import signal
import uuid

from core.avro import registry
from flowmail.publisher import Publisher
from flowmail.samples import campaign_launched, order_placed
from processors.keys import idempotency_key
from streams.topics import DELIVERY
from tests.integration.helpers import outbox, poll, produce_raw, read_topic
from tests.integration.private_broker import private_broker
from tests.integration.test_all_event_types import fresh_user

EMAILS = 24
PROFILES = 18


def _statuses(bootstrap: str, keys: set[str]) -> dict[str, list[str]]:
    schemas, found = registry(), {}
    for message in read_topic(bootstrap, DELIVERY, {}):
        event = schemas.decode(f"{DELIVERY}-value", message.value())
        if event["idempotency_key"] in keys:
            found.setdefault(event["idempotency_key"], []).append(event["status"])
    return found


def test_ledger_survives_kill_9_and_moves_with_its_partitions(stack, settings, tmp_path):
    with private_broker(tmp_path, settings, FLOWMAIL_APP_ID="flowmail-state-test",
                        FLOWMAIL_PARTITIONS_EMAIL="6",
                        FLOWMAIL_INDEX_PREFIX="state-test-events") as broker:
        bootstrap = broker.settings.kafka_bootstrap
        first = broker.start_worker()
        broker.wait_all_ready()
        events = [order_placed(i) for i in range(EMAILS)]
        with Publisher(bootstrap) as publisher:
            for event in events:
                publisher.publish("order.placed", event)
        keys = {idempotency_key(e["event_id"], "order_confirmation", e["customer"]["email"])
                for e in events}
        poll(lambda: keys <= set(outbox(broker.settings.outbox_dir)), f"{EMAILS} emails", 120)
        commands = read_topic(bootstrap, "email.transactional", {})
        assert len(commands) == EMAILS

        process = next(p for p, port, _ in broker.workers if port == first)
        os.kill(process.pid, signal.SIGKILL)  # its ledger store is gone with it
        process.wait(timeout=30)
        broker.workers = [w for w in broker.workers if w[1] != first]
        broker.start_worker()
        broker.start_worker()  # two new owners share the six partitions
        broker.wait_all_ready()
        for command in commands:  # every command again, as a replay from retention would be
            produce_raw(bootstrap, "email.transactional", command.value(), key=command.key())

        def all_skipped() -> dict[str, list[str]] | None:
            statuses = _statuses(bootstrap, keys)
            done = all("skipped_duplicate" in statuses.get(k, []) for k in keys)
            return statuses if done else None

        statuses = poll(all_skipped, "every replayed command recognised as sent", 180)
        assert all(s.count("sent") == 1 for s in statuses.values()), statuses
        box = outbox(broker.settings.outbox_dir)
        assert all(len(box[k]) == 1 for k in keys)


def test_profiles_survive_kill_9_and_move_with_their_partitions(stack, settings, tmp_path):
    """The router's profiles (a store on local disk over the user.profiles changelog):
    restored by new processes after a kill -9 (whose local files are then removed), and
    handed over when a worker leaves; each campaign reaches every profile exactly once."""
    with private_broker(tmp_path, settings, FLOWMAIL_APP_ID="flowmail-profiles-test",
                        FLOWMAIL_INDEX_PREFIX="profiles-test-events") as broker:
        bootstrap, box_dir = broker.settings.kafka_bootstrap, broker.settings.outbox_dir
        first = broker.start_worker()
        broker.wait_all_ready()
        users = [fresh_user(i)[0] for i in range(PROFILES)]
        tag = f"run-{uuid.uuid4().hex[:8]}"
        for event in users:
            event["tags"] = [tag]
        with Publisher(bootstrap) as publisher:
            for event in users:
                publisher.publish("user.created", event)
        welcome = {idempotency_key(e["event_id"], "welcome", e["user"]["email"])
                   for e in users}
        poll(lambda: welcome <= set(outbox(box_dir)), "the welcome emails", 120)

        process = next(p for p, port, _ in broker.workers if port == first)
        state_files = list(broker.settings.state_dir.glob(f"*.{process.pid}.sqlite"))
        assert any(f.name.startswith("user.profiles.") for f in state_files), state_files
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        broker.workers = [w for w in broker.workers if w[1] != first]
        broker.start_worker()
        broker.start_worker()  # two new owners share the domain partitions
        broker.wait_all_ready()
        assert not any(f.exists() for f in state_files), "the dead process's store is left"

        def campaign_reaches_everyone() -> None:
            campaign = campaign_launched(f"camp-{uuid.uuid4().hex[:6]}", tags_any=[tag])
            with Publisher(bootstrap) as publisher:
                publisher.publish("campaign.launched", campaign)
            keys = {idempotency_key(campaign["event_id"], "marketing_campaign",
                                    e["user"]["email"]) for e in users}
            poll(lambda: keys <= set(outbox(box_dir)), "the campaign to every profile", 180)
            box = outbox(box_dir)
            assert all(len(box[k]) == 1 for k in keys)

        campaign_reaches_everyone()
        leaving, _, _ = broker.workers.pop(0)
        leaving.terminate()  # its partitions (and their profiles) move to the other worker
        leaving.wait(timeout=60)
        broker.wait_all_ready()
        campaign_reaches_everyone()
