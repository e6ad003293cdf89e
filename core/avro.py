"""Avro with the Confluent wire format (magic byte 0 + 4-byte schema id + Avro binary).

Schemas are parsed once, when the registry file is loaded. The framing lets standard Kafka
tooling read flowmail's topics. Schema ids come from ``schemas/registry.json``, or, with
``FLOWMAIL_SCHEMA_REGISTRY_URL`` set, from that registry (``RegistrySchemas``): the file's
versions are imported there under the same ids (``flowmail schemas import``), so a record
reads the same either way.
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

from core.avro_compiled import Reader, Writer, compile_reader, compile_writer
from core.compat import problems
from core.schema_registry import RegistryClient, RegistryError, RegistryUnavailable
from core.settings import SCHEMA_DIR, load_settings

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
        self.path = path
        spec = json.loads(path.read_text())
        self._by_id: dict[int, SchemaVersion] = {}
        self._latest: dict[str, SchemaVersion] = {}
        self.texts: dict[int, str] = {}  # file id -> the schema's text as written
        self._pairs: dict[tuple[int, int, bool], tuple[Any, Any, Reader | None]] = {}
        self._writers: dict[int, Writer | None] = {}
        # (subject, writer id, millis) -> its compiled reader, once the slow path found one
        self._readers: dict[tuple[str, int, bool], Reader] = {}
        for subject, versions in spec["subjects"].items():
            for entry in sorted(versions, key=lambda v: v["version"]):
                text = (path.parent / entry["file"]).read_text()
                parsed = fastavro.parse_schema(json.loads(text), named_schemas={})
                version = SchemaVersion(subject, entry["version"], entry["id"], parsed)
                if entry["id"] in self._by_id:
                    raise ValueError(f"{path}: schema id {entry['id']} used twice")
                self._by_id[entry["id"]] = version
                self._latest[subject] = version
                self.texts[entry["id"]] = text

    def versions(self) -> list[SchemaVersion]:
        """Every version of the file, by subject then version."""
        return sorted(self._by_id.values(), key=lambda v: (v.subject, v.version))

    def reader(self, subject: str) -> SchemaVersion:
        """The version this code reads ``subject`` as: the newest it knows."""
        try:
            return self._latest[subject]
        except KeyError as err:
            raise ContractError("unknown_subject", f"no schema registered for {subject!r}") from err

    def subjects(self) -> list[str]:
        return sorted(self._latest)

    def latest(self, subject: str) -> SchemaVersion:
        try:
            return self._latest[subject]
        except KeyError as err:
            raise ContractError("unknown_subject", f"no schema registered for {subject!r}") from err

    def _pair(self, writer: SchemaVersion, reader: SchemaVersion, millis: bool
              ) -> tuple[Any, Any, Reader | None]:
        """The schemas fastavro reads with: no reader schema when it equals the writer's
        (fastavro resolves, slower, whenever one is given), worked out once per pair; and,
        when they are the same, the compiled reader (core/avro_compiled.py) if it has one."""
        key = (id(writer), id(reader), millis)
        pair = self._pairs.get(key)
        if pair is None:
            writes_as = _without_timestamps(writer.parsed) if millis else writer.parsed
            reads_as = _without_timestamps(reader.parsed) if millis else reader.parsed
            same = writer is reader or _plain(writer.parsed) == _plain(reader.parsed)
            compiled = compile_reader(_plain(writes_as)) if same else None
            pair = self._pairs[key] = (writes_as, None if same else reads_as, compiled)
        return pair

    def _writer(self, version: SchemaVersion) -> Writer | None:
        key = id(version)
        if key not in self._writers:
            self._writers[key] = compile_writer(_plain(version.parsed))
        return self._writers[key]

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
        header = HEADER.pack(MAGIC, version.schema_id)
        compiled = self._writer(version)
        if compiled is not None:
            return header + compiled(record)
        buffer = io.BytesIO()
        buffer.write(header)
        fastavro.schemaless_writer(buffer, version.parsed, record)
        return buffer.getvalue()

    def decode(self, subject: str, payload: bytes | None, *, millis: bool = False
               ) -> dict[str, Any]:
        """Read a framed payload written with any registered version of ``subject``.
        ``millis``: timestamps as the epoch milliseconds they are written as, not datetimes
        (the hot path's records want the number: a third of a command's decode was making
        datetimes to turn back)."""
        if not payload or len(payload) < HEADER.size:
            raise ContractError("undecodable", "payload is empty or shorter than the 5-byte header")
        magic, schema_id = HEADER.unpack_from(payload)
        compiled = self._readers.get((subject, schema_id, millis)) if magic == MAGIC else None
        if compiled is not None:
            return _read_compiled(compiled, payload)
        if magic != MAGIC:
            raise ContractError("undecodable", f"magic byte {magic} is not 0 (Confluent framing)")
        writer = self.by_id(schema_id)
        if writer.subject != subject:
            raise ContractError("schema_mismatch",
                                f"schema id {schema_id} belongs to {writer.subject}, not {subject}")
        writes_as, reads_as, compiled = self._pair(writer, self.reader(subject), millis)
        if compiled is not None:
            self._readers[(subject, schema_id, millis)] = compiled
            return _read_compiled(compiled, payload)
        stream = io.BytesIO(payload[HEADER.size:])
        try:
            record = fastavro.schemaless_reader(stream, writes_as, reads_as)
        except Exception as err:  # fastavro raises EOFError, UnicodeDecodeError, ValueError...
            raise ContractError("undecodable", f"{type(err).__name__}: {err}"[:300]) from err
        if stream.read(1):
            raise ContractError("undecodable", "trailing bytes after the Avro record")
        return record


def _read_compiled(read: Reader, payload: bytes) -> dict[str, Any]:
    try:
        record, end = read(payload, HEADER.size)
    except Exception as err:  # every malformed payload: IndexError, ValueError, ...
        raise ContractError("undecodable", _why(err)) from err
    if end != len(payload):
        raise ContractError("undecodable", "trailing bytes after the Avro record"
                            if end < len(payload) else "the Avro record is cut short")
    return record


def _why(err: Exception) -> str:
    """What a compiled reader's exception says about the payload."""
    if isinstance(err, IndexError | struct.error):
        return "the Avro record is cut short"
    return f"{type(err).__name__}: {err}"[:300]


_TIMESTAMPS = {"timestamp-millis", "timestamp-micros", "local-timestamp-millis",
               "local-timestamp-micros"}


def _plain(schema: Any) -> Any:
    """A parsed schema without fastavro's bookkeeping keys."""
    if isinstance(schema, dict):
        return {k: _plain(v) for k, v in schema.items() if not k.startswith("__fastavro")
                and k != "__named_schemas"}
    if isinstance(schema, list):
        return [_plain(v) for v in schema]
    return schema


def _without_timestamps(parsed: Any) -> Any:
    """The same schema with its timestamps as plain longs (the same bytes on the wire)."""
    def strip(schema: Any) -> Any:
        if isinstance(schema, dict):
            return {k: strip(v) for k, v in schema.items()
                    if not (k == "logicalType" and v in _TIMESTAMPS)}
        if isinstance(schema, list):
            return [strip(v) for v in schema]
        return schema
    return fastavro.parse_schema(strip(_plain(parsed)), named_schemas={})


def _field_errors(err: ValidationError) -> list[str]:
    messages = []
    for item in err.errors[:5]:
        messages.append(f"field {item.field!r} got {type(item.datum).__name__}"
                        if hasattr(item, "field") else str(item))
    return messages or [str(err)]


class RegistrySchemas(SchemaRegistry):
    """The file's schemas, with ids from a Schema Registry.

    Writing: the newest file version of a subject, under the id the registry holds it with;
    one the registry does not hold yet is checked by the repo's rules (core/compat.py)
    against the registry's latest, then registered (the registry checks it too). Reading: a
    writer id is looked up in the registry once and kept (ids never change), so a producer
    with a newer version than this code knows is read with this code's version.
    """

    def __init__(self, path: Path, client: RegistryClient) -> None:
        super().__init__(path)
        self.client = client
        self._by_id = {}
        self._writing: dict[str, SchemaVersion] = {}

    def latest(self, subject: str) -> SchemaVersion:
        known = self._writing.get(subject)
        if known is None:
            known = self._writing[subject] = self._register(self.reader(subject))
        return known

    def _register(self, local: SchemaVersion) -> SchemaVersion:
        text = self.texts[local.schema_id]
        try:
            found = self.client.lookup(local.subject, text)
            if found is None:
                current = self.client.latest(local.subject)
                if current is not None:
                    broken = problems(json.loads(current.schema), json.loads(text))
                    if broken:
                        raise ContractError("incompatible_schema",
                                            f"{local.subject}: {'; '.join(broken[:3])}")
                schema_id = self.client.register(local.subject, text)
            else:
                schema_id = found.schema_id
        except RegistryUnavailable as err:
            raise ContractError("registry_unavailable", str(err)) from err
        except RegistryError as err:
            reason = "incompatible_schema" if err.status == 409 else "registry_refused"
            raise ContractError(reason, f"{local.subject}: {err}") from err
        version = SchemaVersion(local.subject, local.version, schema_id, local.parsed)
        self._by_id[schema_id] = version
        return version

    def by_id(self, schema_id: int) -> SchemaVersion:
        known = self._by_id.get(schema_id)
        if known is not None:
            return known
        try:
            found = self.client.by_id(schema_id)
        except RegistryUnavailable as err:
            raise ContractError("registry_unavailable", str(err)) from err
        except RegistryError as err:
            raise ContractError("unknown_schema_id", f"schema id {schema_id}: {err}") from err
        if found is None:
            raise ContractError("unknown_schema_id",
                                f"schema id {schema_id} is not in the schema registry")
        try:
            parsed = fastavro.parse_schema(json.loads(found.schema), named_schemas={})
        except Exception as err:  # not JSON, or not Avro: fastavro raises several kinds
            raise ContractError("unknown_schema_id",
                                f"schema id {schema_id} is not an Avro schema: {err}") from err
        version = SchemaVersion(found.subject, found.version, schema_id, parsed)
        self._by_id[schema_id] = version
        return version


def schemas_for(url: str, path: Path = SCHEMA_DIR / "registry.json") -> SchemaRegistry:
    """The file's ids without a registry URL, the registry's with one."""
    return RegistrySchemas(path, RegistryClient(url)) if url else SchemaRegistry(path)


@lru_cache(maxsize=1)
def registry() -> SchemaRegistry:
    """What producers and consumers use: the registry's ids when one is configured."""
    return schemas_for(load_settings().schema_registry_url)


@lru_cache(maxsize=1)
def file_schemas() -> SchemaRegistry:
    """The repo's schemas with the file's ids, for tools that work without any stack
    (preview, selfcheck, samples)."""
    return SchemaRegistry(SCHEMA_DIR / "registry.json")
