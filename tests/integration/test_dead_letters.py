"""Bad input lands in email.dlq with its reason and source; the worker keeps going."""

import pytest

from core.avro import registry
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from processors.keys import idempotency_key
from tests.integration.helpers import end_offsets, headers_of, outbox, poll, produce_raw, read_topic

GOOD_SCHEMA = registry().latest("order.placed-value")


def encoded(event):
    return registry().encode("order.placed-value", event)


def hostile(mutate):
    event = order_placed(7)
    mutate(event)
    return encoded(event)


CASES = {
    "undecodable": b"\xde\xad\xbe\xef not avro at all",
    "empty": b"",
    "json_instead_of_avro": b'{"order_id": "SF-1"}',
    "unknown_schema_id": b"\x00\x00\x00\x7f\xff" + b"\x02" * 20,
    "truncated": encoded(order_placed(7))[:40],
    "invalid_address": hostile(lambda e: e["customer"].update(email="lena(at)example.org")),
    "header_injection": hostile(lambda e: e["customer"].update(
        first_name="Lena\r\nBcc: everyone@example.org")),
    "missing_field": hostile(lambda e: e.update(items=[])),
    "negative_amount": hostile(lambda e: e.update(total_minor=-100)),
    "oversized": b"\x00\x00\x00\x00\x65" + b"\x00" * (300 * 1024),
}
EXPECTED_REASON = {
    "undecodable": "undecodable", "empty": "undecodable", "json_instead_of_avro": "undecodable",
    "unknown_schema_id": "unknown_schema_id", "truncated": "undecodable",
    "invalid_address": "invalid_address", "header_injection": "header_injection",
    "missing_field": "missing_field", "negative_amount": "schema_mismatch",
    "oversized": "oversized",
}


@pytest.fixture(scope="module")
def dead_letters(worker, settings):
    """Publish every hostile payload, then a good event; return DLQ records by case."""
    since = end_offsets(settings.kafka_bootstrap, "email.dlq")
    produced = {name: produce_raw(settings.kafka_bootstrap, "order.placed", payload, b"poison")
                for name, payload in CASES.items()}
    good = order_placed(3)
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("order.placed", good)
    key = idempotency_key(good["event_id"], "order_confirmation", good["customer"]["email"])
    poll(lambda: outbox(settings.outbox_dir).get(key), "the good event after the poison")

    def collected():
        records = read_topic(settings.kafka_bootstrap, "email.dlq", since)
        by_source = {(h["flowmail.source_partition"], h["flowmail.source_offset"]): (r, h)
                     for r in records for h in [headers_of(r)]}
        found = {name: by_source.get((str(p), str(o))) for name, (p, o) in produced.items()}
        return found if all(found.values()) else None

    return poll(collected, "a dead letter for every hostile payload"), produced


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_bad_input_is_dead_lettered_with_reason_and_source(dead_letters, case):
    found, _ = dead_letters
    record, headers = found[case]
    assert headers["flowmail.reason"] == EXPECTED_REASON[case], headers
    assert headers["flowmail.source_topic"] == "order.placed"
    assert headers["flowmail.stage"] == "router"
    assert headers["flowmail.detail"]
    if case == "oversized":  # a prefix, its size and hash; replay fetches the original
        assert record.value() == CASES[case][:4096]
        assert int(headers["flowmail.original_size"]) == len(CASES[case])
    else:
        assert record.value() == CASES[case]  # nothing lost: the original bytes are kept
    assert record.key() == b"poison"


def test_no_personal_data_in_dead_letter_headers(dead_letters):
    found, _ = dead_letters
    _, headers = found["invalid_address"]
    assert "lena(at)example.org" not in str(headers)


def test_worker_log_has_no_recipient_addresses(dead_letters, worker):
    log = worker.log.read_text(errors="replace")
    assert "@example.org" not in log


def test_events_of_any_size_the_broker_takes_are_dead_lettered_and_replayable(
        worker, settings):
    """0.9x, 1x, 1.5x and 4x FLOWMAIL_MAX_PAYLOAD_BYTES and the broker's own limit: each one
    lands in the DLQ (the large ones truncated, with size and sha256), no agent stops, and
    replay fetches a truncated one's original from its source."""
    import hashlib
    import os
    import subprocess
    import sys

    from confluent_kafka import Producer
    limit = settings.max_payload_bytes
    broker_limit = 2 * 1024 * 1024  # message.max.bytes of the local broker
    sizes = [int(limit * 0.9), limit, int(limit * 1.5), limit * 4, broker_limit - 512]
    log_start = worker.log.stat().st_size
    since = end_offsets(settings.kafka_bootstrap, "email.dlq")
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all",
                         "message.max.bytes": broker_limit + 4096,
                         "partitioner": "murmur2_random"})
    sent = {}
    for size in sizes:
        payload = os.urandom(size)
        producer.produce("order.placed", value=payload, key=f"big-{size}".encode(),
                         on_delivery=lambda err, msg, p=payload: sent.__setitem__(
                             (msg.partition(), msg.offset()), p) if err is None else None)
    assert producer.flush(60) == 0 and len(sent) == len(sizes), "the broker took every size"

    def collected():
        letters = {}
        for record in read_topic(settings.kafka_bootstrap, "email.dlq", since):
            h = headers_of(record)
            where = (int(h["flowmail.source_partition"]), int(h["flowmail.source_offset"]))
            if h["flowmail.source_topic"] == "order.placed" and where in sent:
                letters[where] = (record, h)
        return letters if len(letters) == len(sent) else None

    letters = poll(collected, "a dead letter for every size", timeout_s=90)
    for where, (record, h) in letters.items():
        original = sent[where]
        assert len(record.value() or b"") <= limit
        if len(original) > limit:
            assert h["flowmail.reason"] == "oversized" and h["flowmail.truncated"] == "true"
            assert int(h["flowmail.original_size"]) == len(original)
            assert h["flowmail.original_sha256"] == hashlib.sha256(original).hexdigest()
            assert record.value() == original[:4096]
        else:
            assert h["flowmail.reason"] == "undecodable" and record.value() == original
    new_log = worker.log.read_bytes()[log_start:].decode("utf-8", "replace")
    assert "Traceback" not in new_log and "crashed" not in new_log.lower()
    # replay the 4x one: its original comes back from order.placed, whole
    where = next(w for w in sent if len(sent[w]) == limit * 4)
    dlq_offset = letters[where][0].offset()
    source_end = end_offsets(settings.kafka_bootstrap, "order.placed")
    result = subprocess.run([sys.executable, "-m", "flowmail", "dlq", "replay", "--offset",
                             str(dlq_offset)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    replayed = [r for r in read_topic(settings.kafka_bootstrap, "order.placed", source_end)
                if (r.value() or b"") == sent[where]]
    assert len(replayed) == 1
