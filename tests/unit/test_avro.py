import pytest

from core.avro import HEADER, ContractError, registry
from flowmail.samples import order_placed


def test_round_trip_uses_confluent_framing():
    event = order_placed(3)
    payload = registry().encode("order.placed-value", event)
    magic, schema_id = HEADER.unpack_from(payload)
    assert (magic, schema_id) == (0, 101)
    decoded = registry().decode("order.placed-value", payload)
    assert decoded["order_id"] == event["order_id"]
    assert decoded["items"] == event["items"]


def test_missing_field_is_named():
    event = order_placed(1)
    del event["order_id"]
    with pytest.raises(ContractError) as err:
        registry().encode("order.placed-value", event)
    assert err.value.reason == "schema_mismatch" and "order_id" in str(err.value)


def test_wrong_type_is_refused():
    event = order_placed(1)
    event["total_minor"] = "12.50"
    with pytest.raises(ContractError, match="total_minor"):
        registry().encode("order.placed-value", event)


@pytest.mark.parametrize(("payload", "reason"), [
    (b"", "undecodable"),
    (b"\x00\x00", "undecodable"),
    (b"{\"json\": true}", "undecodable"),
    (b"\x00\x00\x00\x03\xe7garbage", "unknown_schema_id"),
    (b"\x00\x00\x00\x00\x65\xff\xff\xff\xff\xff\xff", "undecodable"),
])
def test_bad_bytes_give_a_reason(payload, reason):
    with pytest.raises(ContractError) as err:
        registry().decode("order.placed-value", payload)
    assert err.value.reason == reason


def test_schema_of_another_subject_is_a_mismatch():
    command_payload = b"\x00\x00\x00\x00\xc9" + b"\x00" * 10  # id 201 = email.command
    with pytest.raises(ContractError) as err:
        registry().decode("order.placed-value", command_payload)
    assert err.value.reason == "schema_mismatch"


def test_trailing_bytes_are_refused():
    payload = registry().encode("order.placed-value", order_placed(2)) + b"extra"
    with pytest.raises(ContractError, match="trailing"):
        registry().decode("order.placed-value", payload)
