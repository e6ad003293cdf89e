import datetime as dt

import pytest

from core.avro import ContractError, registry
from flowmail.publisher import Publisher, from_json
from flowmail.samples import example


def test_example_event_from_json_is_valid():
    schema = registry().latest("order.placed-value").parsed
    event = from_json(schema, example("order.placed"))
    assert event["occurred_at"] == dt.datetime(2026, 11, 27, 10, 15, tzinfo=dt.UTC)
    assert event["estimated_delivery"] == dt.date(2026, 12, 2)
    registry().encode("order.placed-value", event)


def test_bad_timestamp_is_a_contract_error():
    schema = registry().latest("order.placed-value").parsed
    document = example("order.placed")
    document["occurred_at"] = "yesterday"
    with pytest.raises(ContractError, match="ISO 8601"):
        from_json(schema, document)


def test_unknown_event_type_is_refused_before_any_io():
    publisher = Publisher("127.0.0.1:1")  # never contacted: encode fails first
    with pytest.raises(ContractError, match="not one of"):
        publisher.encode("order.cancelled", {})
