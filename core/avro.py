"""Avro with the Confluent wire format (magic byte 0 + 4-byte schema id + Avro binary).

Schemas are parsed once, when the registry file is loaded. The framing lets standard Kafka
tooling read flowmail's topics; schema ids come from ``schemas/registry.json``.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from core.settings import SCHEMA_DIR

MAGIC = 0
HEADER = struct.Struct(">bI")


class ContractError(ValueError):
    """A payload does not fit its contract. ``reason`` is a short code for the DLQ header."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SchemaVersion:
    subject: str
    version: int
    schema_id: int
    parsed: Any


class SchemaRegistry:
    """The subjects and versions in a registry file, parsed once."""

    def __init__(self, path: Path) -> None:
        spec = json.loads(path.read_text())
        self._by_id: dict[int, SchemaVersion] = {}
        self._latest: dict[str, SchemaVersion] = {}
        for subject, versions in spec["subjects"].items():
            for entry in sorted(versions, key=lambda v: v["version"]):
                raw = json.loads((path.parent / entry["file"]).read_text())
                parsed = fastavro.parse_schema(raw, named_schemas={})
                version = SchemaVersion(subject, entry["version"], entry["id"], parsed)
                if entry["id"] in self._by_id:
                    raise ValueError(f"{path}: schema id {entry['id']} used twice")
                self._by_id[entry["id"]] = version
                self._latest[subject] = version

    def subjects(self) -> list[str]:
        return sorted(self._latest)

    def latest(self, subject: str) -> SchemaVersion:
        try:
            return self._latest[subject]
        except KeyError as err:
            raise ContractError("unknown_subject", f"no schema registered for {subject!r}") from err

    def by_id(self, schema_id: int) -> SchemaVersion:
        try:
            return self._by_id[schema_id]
        except KeyError as err:
            raise ContractError("unknown_schema_id",
                                f"schema id {schema_id} is not registered") from err

    def encode(self, subject: str, record: dict[str, Any], check: bool = True) -> bytes:
        """Serialize with the latest schema of ``subject``.

        ``check`` validates first so the error names the field; records flowmail builds itself
        skip it (the writer still refuses wrong types, as an internal error).
        """
        version = self.latest(subject)
        if check:
            try:
                validate(record, version.parsed, raise_errors=True)
            except ValidationError as err:
                raise ContractError("schema_mismatch", "; ".join(_field_errors(err))) from err
        buffer = io.BytesIO()
        buffer.write(HEADER.pack(MAGIC, version.schema_id))
        fastavro.schemaless_writer(buffer, version.parsed, record)
        return buffer.getvalue()

    def decode(self, subject: str, payload: bytes | None) -> dict[str, Any]:
        """Read a framed payload written with any registered version of ``subject``."""
        if not payload or len(payload) < HEADER.size:
            raise ContractError("undecodable", "payload is empty or shorter than the 5-byte header")
        magic, schema_id = HEADER.unpack_from(payload)
        if magic != MAGIC:
            raise ContractError("undecodable", f"magic byte {magic} is not 0 (Confluent framing)")
        writer = self.by_id(schema_id)
        if writer.subject != subject:
            raise ContractError("schema_mismatch",
                                f"schema id {schema_id} belongs to {writer.subject}, not {subject}")
        reader = self.latest(subject)
        stream = io.BytesIO(payload[HEADER.size:])
        try:
            record = fastavro.schemaless_reader(stream, writer.parsed, reader.parsed)
        except Exception as err:  # fastavro raises EOFError, UnicodeDecodeError, ValueError...
            raise ContractError("undecodable", f"{type(err).__name__}: {err}"[:300]) from err
        if stream.read(1):
            raise ContractError("undecodable", "trailing bytes after the Avro record")
        return record


def _field_errors(err: ValidationError) -> list[str]:
    messages = []
    for item in err.errors[:5]:
        messages.append(f"field {item.field!r} got {type(item.datum).__name__}"
                        if hasattr(item, "field") else str(item))
    return messages or [str(err)]


@lru_cache(maxsize=1)
def registry() -> SchemaRegistry:
    return SchemaRegistry(SCHEMA_DIR / "registry.json")
