"""Every registered schema version is frozen, documented, and compatible with the one before."""

import copy
import hashlib
import itertools
import json
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from core.compat import problems

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
REGISTRY = json.loads((SCHEMAS / "registry.json").read_text())["subjects"]
VERSIONS = [(subject, entry) for subject, entries in REGISTRY.items() for entry in entries]


def load(entry):
    return json.loads((SCHEMAS / entry["file"]).read_text())


@pytest.mark.parametrize(("subject", "entry"), VERSIONS, ids=[e["file"] for _, e in VERSIONS])
def test_registered_versions_never_change(subject, entry):
    parsed = fastavro.parse_schema(load(entry), named_schemas={})
    fingerprint = hashlib.sha256(to_parsing_canonical_form(parsed).encode()).hexdigest()
    assert fingerprint == entry["fingerprint"], (
        f"{entry['file']} ({subject} v{entry['version']}) has fingerprint {fingerprint}: a new "
        "file registers that; an edited one must become a new version with a new id and file "
        "instead (schemas/registry.json)")


@pytest.mark.parametrize(("subject", "entry"), VERSIONS, ids=[e["file"] for _, e in VERSIONS])
def test_every_field_is_documented(subject, entry):
    def walk(schema, path):
        if isinstance(schema, dict) and schema.get("type") == "record":
            assert schema.get("doc"), f"{path}: record without doc"
            for field in schema["fields"]:
                assert field.get("doc"), f"{path}.{field['name']}: field without doc"
                walk(field["type"], f"{path}.{field['name']}")
        elif isinstance(schema, dict) and schema.get("type") == "array":
            walk(schema["items"], path + "[]")
        elif isinstance(schema, list):
            for branch in schema:
                walk(branch, path)
    walk(load(entry), subject)


@pytest.mark.parametrize("subject", sorted(s for s in REGISTRY if not s.startswith("email.")))
def test_domain_events_carry_id_time_and_version(subject):
    fields = {f["name"]: f for f in load(REGISTRY[subject][-1])["fields"]}
    assert fields["event_id"]["type"] == "string"
    assert fields["occurred_at"]["type"]["logicalType"] == "timestamp-millis"
    assert fields["schema_version"]["default"] == 1


def test_amounts_are_integer_minor_units():
    def floats(schema):
        if schema in ("float", "double"):
            yield schema
        elif isinstance(schema, dict):
            for value in schema.values():
                yield from floats(value)
        elif isinstance(schema, list):
            for item in schema:
                yield from floats(item)
    for subject, entries in REGISTRY.items():
        # measurements, not money: a delivery's latency_ms, an alert's rate and threshold
        if subject not in {"email.delivery-value", "ops.alert-value"}:
            assert not list(floats(load(entries[-1]))), subject


@pytest.mark.parametrize("subject", sorted(REGISTRY))
def test_consecutive_versions_are_compatible(subject):
    entries = REGISTRY[subject]
    for old, new in itertools.pairwise(entries):
        assert problems(load(old), load(new)) == [], (old["file"], new["file"])
        assert new["id"] > old["id"]


# The checker itself must catch what it promises to catch.
BASE = {"type": "record", "name": "E", "fields": [
    {"name": "id", "type": "string"},
    {"name": "amount", "type": "int"},
    {"name": "note", "type": ["null", "string"], "default": None},
    {"name": "status", "type": {"type": "enum", "name": "S", "symbols": ["A", "B"]}},
]}


def evolve(change):
    schema = copy.deepcopy(BASE)
    change(schema["fields"])
    return schema


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.append({"name": "extra", "type": "string"}), "added without a default"),
    (lambda f: f.pop(0), "required field removed"),
    (lambda f: f[1].update(type="string"), "type changed from int to string"),
    (lambda f: f[3]["type"].update(symbols=["A"]), "enum symbols removed"),
    (lambda f: f[3]["type"].update(symbols=["A", "B", "C"]), "without an enum default"),
    (lambda f: f[2].update(type="string"), "type changed from union to string"),
])
def test_incompatible_changes_are_caught(change, message):
    found = problems(BASE, evolve(change))
    assert any(message in p for p in found), found


@pytest.mark.parametrize("change", [
    lambda f: f.append({"name": "extra", "type": "string", "default": ""}),
    lambda f: f.pop(2),
    lambda f: f[1].update(type="long"),
    lambda f: f[0].update(type=["null", "string"], default=None),
    lambda f: f[3]["type"].update(symbols=["A", "B", "C"], default="A"),
])
def test_compatible_changes_pass_and_old_data_reads_with_the_new_schema(change):
    new = evolve(change)
    assert problems(BASE, new) == []
    import io
    buffer = io.BytesIO()
    old_parsed = fastavro.parse_schema(BASE, named_schemas={})
    fastavro.schemaless_writer(buffer, old_parsed, {"id": "x", "amount": 5, "note": None,
                                                    "status": "B"})
    buffer.seek(0)
    fastavro.schemaless_reader(buffer, old_parsed, fastavro.parse_schema(new, named_schemas={}))
