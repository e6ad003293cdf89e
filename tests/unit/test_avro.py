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


def _millis(value):
    """Datetimes as the epoch milliseconds they were written as, everywhere in a record."""
    import datetime as dt
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _millis(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_millis(v) for v in value]
    return value


def test_timestamps_read_as_millis_are_the_same_records():
    """``millis=True`` (the hot path's reading) gives what the normal reading gives, with
    epoch milliseconds for datetimes; an older writer version is still resolved to the
    reader's (email.delivery v1 written, v2 read: the fields v2 added get their defaults)."""
    import io

    import fastavro

    from core.avro import MAGIC
    from core.vocab import DeliveryStatus
    from processors.commands import DeliveryEvent
    from processors.delivery import delivery_record
    schemas = registry()
    event = order_placed(2)
    payload = schemas.encode("order.placed-value", event)
    plain = schemas.decode("order.placed-value", payload, millis=True)
    assert plain == _millis(schemas.decode("order.placed-value", payload))
    assert isinstance(plain["occurred_at"], int)

    from bench.render import commands_by_type
    command = next(iter(commands_by_type().values()))[0]
    sent = DeliveryEvent.from_record(delivery_record(command, DeliveryStatus.SENT, b"k",
                                                     provider="smtp"))
    old = schemas.by_id(301)
    record = {k: v for k, v in sent.to_record().items()
              if k in {f["name"] for f in old.parsed["fields"]}}
    buffer = io.BytesIO()
    buffer.write(HEADER.pack(MAGIC, 301))
    fastavro.schemaless_writer(buffer, old.parsed, record)
    for framed in (buffer.getvalue(), schemas.encode("email.delivery-value", sent.to_record())):
        normal = schemas.decode("email.delivery-value", framed)
        fast = schemas.decode("email.delivery-value", framed, millis=True)
        assert fast == _millis(normal)
        assert DeliveryEvent.from_record(fast) == DeliveryEvent.from_record(normal)
