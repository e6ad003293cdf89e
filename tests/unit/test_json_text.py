"""core/json_text reads back what the json module would, for every value flowmail writes."""

import datetime as dt
import json
import math
from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import json_text

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@given(JSON_VALUES)
def test_any_json_value_comes_back_as_the_json_module_reads_it(value):
    text = json_text.dumps(value)
    assert json_text.loads(text) == json.loads(json.dumps(value))
    assert json_text.loads(json_text.dumps_bytes(value)) == json.loads(text)


@pytest.mark.parametrize("value", [2**70, -(2**64), 12345678901234567890123])
def test_integers_beyond_64_bits_stay_exact(value):
    assert json_text.loads(json_text.dumps({"n": value})) == {"n": value}
    assert json_text.loads(json.dumps([value])) == [value]


def test_non_finite_numbers_are_written_as_null_and_read_as_json_reads_them():
    """JSON has no NaN or Infinity: null is what RFC 8259 readers (OpenSearch) accept."""
    assert json_text.dumps([math.nan, math.inf]) == "[null,null]"


def test_what_only_the_json_module_reads_or_writes():
    assert json_text.loads("[NaN]")[0] != json_text.loads("[NaN]")[0]  # NaN, not an error
    assert math.isinf(json_text.loads(b"Infinity"))
    assert json_text.loads(json_text.dumps({1: "a"})) == {"1": "a"}  # as json.dumps does
    with pytest.raises(json.JSONDecodeError):
        json_text.loads("{not json")


def test_dates_and_other_values_are_written_as_str_was():
    @dataclass
    class Point:
        x: int

    when = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    value = {"at": when, "day": when.date(), "amount": Decimal("12.50"), "p": Point(1)}
    assert json_text.loads(json_text.dumps(value)) == json.loads(json.dumps(value, default=str))


def test_sorted_keys_and_text_outside_ascii():
    assert json_text.dumps({"b": 1, "a": "é"}, sort_keys=True) == '{"a":"é","b":1}'
    assert json_text.dumps_bytes({"b": 1, "a": [1]}, sort_keys=True) == b'{"a":[1],"b":1}'
