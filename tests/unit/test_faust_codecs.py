import pytest
from faust.serializers import codecs

import streams.codecs  # noqa: F401 - registers the codecs
from core.avro import ContractError
from flowmail.samples import order_placed


def test_registered_codec_round_trips_with_confluent_framing():
    codec = codecs.get_codec("flowmail.order.placed-value")
    event = order_placed(2)
    payload = codec.dumps(event)
    assert payload[:1] == b"\x00"
    assert codec.loads(payload)["order_id"] == event["order_id"]


def test_codec_refuses_what_the_schema_refuses():
    codec = codecs.get_codec("flowmail.email.delivery-value")
    with pytest.raises(ContractError):
        codec.dumps({"event_id": "x"})
