"""The compiled Avro codecs (core/avro_compiled.py) against fastavro, the reference: the same
bytes written, the same records read, and every malformed payload refused with a reason."""

import datetime as dt
import io
import random
import struct

import fastavro
import pytest

from core.avro import ContractError, _plain, _without_timestamps, file_schemas
from core.avro_compiled import compile_reader, compile_writer
from flowmail.samples import SAMPLES

VERSIONS = file_schemas().versions()
TEXTS = ["", "a", "Grüße aus Köln", "注文確認", "x" * 200, "\u2028line", "e\u0301", "🙂" * 70]


def _value(schema, named, rng, depth=0):
    """A random value valid for ``schema`` (fastavro's parsed form)."""
    if isinstance(schema, str) and schema in named:
        schema = named[schema]
    if isinstance(schema, list):
        return _value(rng.choice(schema), named, rng, depth)
    kind = schema if isinstance(schema, str) else schema["type"]
    if isinstance(schema, dict) and schema.get("name"):
        named[schema["name"]] = schema
    if isinstance(schema, dict) and schema.get("logicalType") == "timestamp-millis":
        return rng.choice([0, 1_764_000_000_123, rng.randrange(1 << 41)])
    if isinstance(schema, dict) and schema.get("logicalType") == "date":
        return dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(-800, 800))
    return {
        "null": lambda: None,
        "boolean": lambda: rng.random() < 0.5,
        "int": lambda: rng.choice([0, -1, 63, -64, 64, 8191, -8193, 2**31 - 1, -2**31]),
        "long": lambda: rng.choice([0, -1, 2**40, -2**63, 2**63 - 1, rng.randrange(10**6)]),
        "double": lambda: rng.choice([0.0, -1.5, 1e300, rng.random()]),
        "float": lambda: rng.choice([0.0, -1.5, 0.25]),
        "string": lambda: rng.choice(TEXTS),
        "bytes": lambda: rng.randbytes(rng.randrange(0, 300)),
        "enum": lambda: rng.choice(schema["symbols"]),
        "fixed": lambda: rng.randbytes(schema["size"]),
        "array": lambda: [_value(schema["items"], named, rng, depth + 1)
                          for _ in range(rng.randrange(0, 4 if depth < 3 else 1))],
        "map": lambda: {rng.choice(TEXTS) + str(n): _value(schema["values"], named, rng, depth + 1)
                        for n in range(rng.randrange(0, 3))},
        "record": lambda: {field["name"]: _value(field["type"], named, rng, depth + 1)
                           for field in schema["fields"]},
    }[kind]()


def _records(version, count=40):
    rng = random.Random(version.schema_id)
    records = [_value(_plain(version.parsed), {}, rng) for _ in range(count)]
    samples = [sample for topic, sample in SAMPLES.items() if version.subject.startswith(topic)]
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    return records + [sample(index, now) for sample in samples for index in range(4)]


def _fastavro_bytes(parsed, record):
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    return buffer.getvalue()


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: f"{v.subject}-v{v.version}")
def test_the_same_bytes_and_records_as_fastavro(version):
    writer = compile_writer(_plain(version.parsed))
    millis_schema = _without_timestamps(version.parsed)
    reader = compile_reader(_plain(millis_schema))
    for record in _records(version):
        expected = _fastavro_bytes(version.parsed, record)
        if writer is not None:
            assert writer(record) == expected
        if reader is not None:
            read, end = reader(b"\0" + expected, 1)
            assert end == len(expected) + 1
            assert read == fastavro.schemaless_reader(io.BytesIO(expected), millis_schema, None)


@pytest.mark.parametrize("subject", ["email.command-value", "email.delivery-value",
                                     "user.created-value", "campaign.launched-value"])
def test_the_hot_path_subjects_are_compiled(subject):
    """A schema change that falls back to fastavro would cost the hot path a ninth of its CPU:
    this says so here rather than in a benchmark."""
    version = file_schemas().latest(subject)
    assert compile_writer(_plain(version.parsed)) is not None
    assert compile_reader(_plain(_without_timestamps(version.parsed))) is not None


@pytest.mark.parametrize("subject", ["email.command-value", "email.delivery-value"])
def test_every_cut_and_every_garbled_payload_is_refused_or_read_as_fastavro_reads_it(subject):
    schemas = file_schemas()
    version = schemas.latest(subject)
    payload = schemas.encode(subject, _records(version, 1)[0], check=False)
    for cut in range(5, len(payload)):
        with pytest.raises(ContractError) as err:
            schemas.decode(subject, payload[:cut], millis=True)
        assert err.value.reason == "undecodable"
    rng = random.Random(7)
    plain = _without_timestamps(version.parsed)
    for _ in range(300):
        garbled = bytearray(payload)
        for _ in range(rng.randrange(1, 4)):
            garbled[rng.randrange(5, len(garbled))] = rng.randrange(256)
        try:
            read = schemas.decode(subject, bytes(garbled), millis=True)
        except ContractError as err:
            assert err.reason == "undecodable"
            continue
        assert read == fastavro.schemaless_reader(io.BytesIO(bytes(garbled[5:])), plain, None)


@pytest.mark.parametrize(("field", "value"), [
    ("attempt", "1"), ("attempt", 1.5), ("attempt", 2**63), ("event_id", None),
    ("event_id", b"bytes"), ("latency_ms", "fast"),
])
def test_a_wrong_type_is_refused_by_the_compiled_writer(field, value):
    schemas = file_schemas()
    version = schemas.latest("email.delivery-value")
    record = {**_records(version, 1)[0], field: value}
    with pytest.raises((TypeError, ValueError, struct.error)):
        schemas.encode("email.delivery-value", record, check=False)


def test_a_union_of_two_types_is_left_to_fastavro():
    schema = {"type": "record", "name": "T", "fields": [
        {"name": "x", "type": ["null", "string", "long"]}]}
    assert compile_writer(schema) is None
    reader = compile_reader(schema)
    assert reader is not None
    assert reader(b"\x04\x06", 0) == ({"x": 3}, 2)
    with pytest.raises(ValueError, match="out of range"):
        reader(b"\x06\x06", 0)


def test_a_record_inside_itself_is_one_function_called_again():
    schema = fastavro.parse_schema({"type": "record", "name": "Node", "fields": [
        {"name": "v", "type": "int"}, {"name": "next", "type": ["null", "Node"]}]})
    chain = {"v": 1, "next": {"v": -70, "next": {"v": 300, "next": None}}}
    writer, reader = compile_writer(_plain(schema)), compile_reader(_plain(schema))
    assert writer is not None and reader is not None
    assert writer(chain) == _fastavro_bytes(schema, chain)
    assert reader(writer(chain), 0) == (chain, len(writer(chain)))
