"""Bad input lands in email.dlq with its reason and source; the worker keeps going."""

import pytest

from flowmail.avro import registry
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
    assert record.value() == CASES[case]  # nothing lost: the original bytes are kept
    assert record.key() == b"poison"


def test_no_personal_data_in_dead_letter_headers(dead_letters):
    found, _ = dead_letters
    _, headers = found["invalid_address"]
    assert "lena(at)example.org" not in str(headers)


def test_worker_log_has_no_recipient_addresses(dead_letters, worker):
    log = worker.log.read_text(errors="replace")
    assert "@example.org" not in log
