"""The batch senders' ledger lives in its Kafka changelog: after a kill -9 (the in-memory
store gone with the process) and with the partitions handed over to two other workers, every
command replayed from the topic is recognised as sent and none is sent again.
"""

from __future__ import annotations

import os
import signal

from flowmail.avro import registry
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from processors.keys import idempotency_key
from streams.topics import DELIVERY
from tests.integration.helpers import outbox, poll, produce_raw, read_topic
from tests.integration.private_broker import private_broker

EMAILS = 24


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
