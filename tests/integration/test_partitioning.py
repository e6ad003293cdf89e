"""Every producer places keys like Faust (murmur2): a suppression published by the CLI stops
the next email to that recipient on whichever of three workers owns its partition.

Twelve partitions, three workers in one group, and recipients whose recipient key librdkafka's
default partitioner (CRC32) would place on another partition than Faust's murmur2: before
the fix, their suppression landed where the sending worker could not see it.
"""

from __future__ import annotations

import uuid
import zlib

from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, TopicPartition

from flowmail.publisher import Publisher
from flowmail.samples import user_created
from processors.keys import idempotency_key, recipient_key
from streams.topics import SUPPRESSIONS
from tests.integration.helpers import end_offsets, outbox, poll, search
from tests.integration.private_broker import private_broker

PARTITIONS = 12
APP_ID = "flowmail-partition-test"
INDEX = "partition-test-events"


def murmur2_partition(key: bytes) -> int:
    return DefaultPartitioner()(key, list(range(PARTITIONS)), list(range(PARTITIONS)))


def crc32_partition(key: bytes) -> int:  # librdkafka's default (consistent_random)
    return zlib.crc32(key) % PARTITIONS


def recipients_the_two_hashes_split(secret: str, count: int) -> list[str]:
    found = []
    while len(found) < count:
        address = f"split.{uuid.uuid4().hex[:10]}@example.org"
        key = recipient_key(address, secret.encode()).encode()
        if murmur2_partition(key) != crc32_partition(key):
            found.append(address)
    return found


def caught_up(bootstrap: str, ends: dict[int, int]) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": APP_ID,
                         "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(SUPPRESSIONS, p) for p in ends],
                                       timeout=10)
    finally:
        consumer.close()
    return all(tp.offset >= ends[tp.partition] for tp in committed if ends[tp.partition])


def test_a_cli_suppression_stops_the_next_email_on_whichever_worker_owns_it(
        stack, settings, tmp_path):
    with private_broker(tmp_path, settings, FLOWMAIL_APP_ID=APP_ID,
                        FLOWMAIL_PARTITIONS_EMAIL=str(PARTITIONS),
                        FLOWMAIL_PARTITIONS_DOMAIN=str(PARTITIONS),
                        FLOWMAIL_INDEX_PREFIX=INDEX) as broker:
        for _ in range(3):
            broker.start_worker()
        broker.wait_all_ready()
        secret = broker.settings.pseudonym_secret
        suppressed = recipients_the_two_hashes_split(secret, 4)
        for address in suppressed:
            key = recipient_key(address, secret.encode()).encode()
            assert murmur2_partition(key) != crc32_partition(key)  # the case the fix is for
            result = broker.cli("suppress", address, "--reason", "manual")
            assert result.returncode == 0, result.stderr
        bootstrap = broker.settings.kafka_bootstrap
        ends = end_offsets(bootstrap, SUPPRESSIONS)
        assert sum(ends.values()) == 4
        poll(lambda: caught_up(bootstrap, ends), "the workers to take in the suppressions", 60)
        controls = [f"control.{uuid.uuid4().hex[:10]}@example.org" for _ in range(2)]
        events = {}
        with Publisher(bootstrap) as publisher:
            for index, address in enumerate(suppressed + controls):
                event = user_created(index)
                event["user"]["user_id"] = f"cus-{uuid.uuid4().hex[:8]}"
                event["user"]["email"] = address
                publisher.publish("user.created", event)
                events[address] = event

        def outcome(address: str) -> str | None:
            hits = search(settings.opensearch_url, f"{INDEX}-*",
                          {"term": {"source_event_id": events[address]["event_id"]}})
            return hits[0]["_source"]["status"] if hits else None

        for address in suppressed:
            assert poll(lambda a=address: outcome(a), "an outcome", 60) == "suppressed"
        for address in controls:
            assert poll(lambda a=address: outcome(a), "an outcome", 60) == "sent"
        mail = outbox(broker.settings.outbox_dir)
        for address in suppressed:
            assert idempotency_key(events[address]["event_id"], "welcome", address) not in mail
