"""When the broker refuses a dead letter, a minimal one (headers and source coordinates) is
written; when it refuses even that, the agent waits and retries instead of skipping the
record. Made real by shrinking the DLQ topic's max.message.bytes on a private broker."""

from __future__ import annotations

import os

from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from processors.keys import idempotency_key
from tests.integration.helpers import end_offsets, headers_of, outbox, poll, read_topic
from tests.integration.private_broker import private_broker


def dlq_limit(bootstrap: str, max_bytes: int) -> None:
    entry = ConfigEntry("max.message.bytes", str(max_bytes),
                        incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, "email.dlq", incremental_configs=[entry])
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_refused_dead_letters_fall_back_and_are_never_skipped(stack, settings, tmp_path):
    with private_broker(tmp_path, settings, FLOWMAIL_PARTITIONS_DOMAIN="1",
                        FLOWMAIL_INDEX_PREFIX="dlq-fallback-events") as broker:
        broker.start_worker()
        broker.wait_all_ready()
        bootstrap = broker.settings.kafka_bootstrap
        since = end_offsets(bootstrap, "email.dlq")
        # 1. a 3 KB dead letter does not fit in 2,000 bytes: a minimal one is written instead
        dlq_limit(bootstrap, 2000)
        poison = os.urandom(3000)
        with Publisher(bootstrap) as publisher:
            publisher.send_encoded("order.placed", poison, "poison")
        [letter] = poll(lambda: read_topic(bootstrap, "email.dlq", since) or None,
                        "the minimal dead letter")
        headers = headers_of(letter)
        assert headers["flowmail.minimal"] == "true" and not letter.value()
        assert headers["flowmail.reason"] == "undecodable"
        assert headers["flowmail.source_topic"] == "order.placed"
        # replay reads the original from its source coordinates
        replay = broker.cli("dlq", "replay", "--offset", str(letter.offset()))
        assert replay.returncode == 0, replay.stderr
        replayed = poll(lambda: (lambda r: r if len(r) == 2 else None)(
            read_topic(bootstrap, "email.dlq", since)), "the replayed record's dead letter")
        assert headers_of(replayed[1])["flowmail.source_offset"] == "1"
        # 2. nothing fits: the router waits on the record; a good event behind it waits too
        since = end_offsets(bootstrap, "email.dlq")
        dlq_limit(bootstrap, 100)
        good = order_placed(2)
        with Publisher(bootstrap) as publisher:
            publisher.send_encoded("order.placed", os.urandom(500), "poison-2")
            publisher.publish("order.placed", good)
        key = idempotency_key(good["event_id"], "order_confirmation", good["customer"]["email"])
        poll(lambda: "minimal dead letter" in broker.workers[0][2].read_text() and
             "retrying" in broker.workers[0][2].read_text(), "the refused minimal dead letter")
        assert key not in outbox(broker.settings.outbox_dir)  # not skipped past
        dlq_limit(bootstrap, 1_000_000)
        [late] = poll(lambda: read_topic(bootstrap, "email.dlq", since) or None,
                      "the minimal dead letter once the broker takes it")
        assert headers_of(late)["flowmail.source_offset"] == "2"
        poll(lambda: outbox(broker.settings.outbox_dir).get(key), "the good event after it",
             timeout_s=90)
