"""The delivery event the sender writes (processors/delivery.py): built as the record it is
written as, with the fields of DeliveryEvent, and without personal data."""

from __future__ import annotations

import pytest

from core.avro import file_schemas
from core.vocab import DeliveryStatus
from flowmail.samples import order_placed
from processors.commands import DeliveryEvent
from processors.delivery import delivery_record
from processors.keys import delivery_event_id, recipient_key
from processors.routing import route

NOW = 1_780_000_000_000
[ORDER] = route("order.placed", order_placed(1), NOW - 50, NOW)


def test_the_record_has_every_field_of_a_delivery_event_and_reads_back():
    record = delivery_record(ORDER, DeliveryStatus.SENT, b"k", provider="smtp",
                             provider_message_id="m-1", latency_ms=12.5)
    assert set(record) == set(DeliveryEvent.__dataclass_fields__) - {"extra"}
    event = DeliveryEvent.from_record(record)
    assert event.status is DeliveryStatus.SENT and event.provider == "smtp"
    assert event.event_id == delivery_event_id(ORDER.idempotency_key, "sent", ORDER.attempt)
    assert event.recipient_key == recipient_key(ORDER.recipient, b"k")
    assert ORDER.recipient not in repr(record)
    payload = file_schemas().encode("email.delivery-value", record, check=True)
    assert file_schemas().decode("email.delivery-value", payload, millis=True) == record


def test_a_reason_loses_its_addresses():
    record = delivery_record(ORDER, DeliveryStatus.FAILED, b"k",
                             reason="550 5.1.1 <anna@example.org>: user unknown")
    assert record["reason"] == "550 5.1.1 <<address>>: user unknown"


def test_a_field_a_delivery_event_does_not_have_is_refused_when_read():
    record = delivery_record(ORDER, DeliveryStatus.SENT, b"k", providr="smtp")
    with pytest.raises(TypeError, match="providr"):
        DeliveryEvent.from_record(record)


def test_records_read_back_as_the_same_objects_as_through_init():
    from processors.commands import EmailCommand, _built
    record = delivery_record(ORDER, DeliveryStatus.SENT, b"k", provider="smtp")
    event = DeliveryEvent.from_record(record)
    values = {**record, "status": DeliveryStatus.SENT}
    assert event == DeliveryEvent(**values) and event.extra == {}
    assert event.to_record() == record
    command = EmailCommand.from_record(ORDER.to_record())
    assert command.to_record() == ORDER.to_record()  # template_data as its JSON reads back
    assert _built(EmailCommand, {**ORDER.__dict__}) == ORDER
    with pytest.raises(TypeError):  # a field too many: through __init__, which refuses it
        _built(EmailCommand, {**ORDER.__dict__, "surplus": 1})
    short = {k: v for k, v in ORDER.__dict__.items() if k != "attempt"}
    assert _built(EmailCommand, short).attempt == 1  # a default, filled by __init__


def test_enum_fields_read_by_lookup_refuse_and_degrade_as_the_enums_do():
    """Values are looked up in a dict (processors/commands.py), with the Enum's own errors:
    an unknown email type or priority is refused (the sender dead-letters the command), an
    unknown status (a newer producer's) reads as ``unknown``."""
    from core.catalogue import EmailType
    from core.vocab import Priority
    from processors.commands import EmailCommand
    record = ORDER.to_record()
    command = EmailCommand.from_record(record)
    assert command.email_type is EmailType.ORDER_CONFIRMATION
    assert command.priority is Priority.TRANSACTIONAL
    with pytest.raises(ValueError, match="'no_such_type' is not a valid EmailType"):
        EmailCommand.from_record({**record, "email_type": "no_such_type"})
    with pytest.raises(ValueError, match="'urgent' is not a valid Priority"):
        EmailCommand.from_record({**record, "priority": "urgent"})
    event = delivery_record(ORDER, DeliveryStatus.SENT, b"k")
    assert DeliveryEvent.from_record({**event, "status": "teleported"}).status is (
        DeliveryStatus.UNKNOWN)
    for status in DeliveryStatus:
        assert DeliveryEvent.from_record({**event, "status": status.value}).status is status
