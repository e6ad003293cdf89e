"""Avro binary codecs compiled to Python for one schema: the hot path's encode and decode.

Why: fastavro's schemaless writer and reader cost 9-16 µs a delivery event (22 fields,
eight of them ``["null", ...]`` unions, which it resolves by validating each branch) and were
a ninth of a worker's CPU in the mix's profile; the same record through a function written
for its schema costs 3.5-5 µs (docs/performance.md, fifteenth session). fastavro stays the
reference: every codec here is tested to give its bytes and its records, and a schema with
anything not handled here (a union of two non-null types, a logical type a reader would have
to build objects for) is left to it (``None`` from the compilers).

Readers assume the payload was written with the same schema; schema resolution between two
versions stays fastavro's. Every malformed payload raises (``IndexError``, ``EOFError``,
``ValueError``, ``UnicodeDecodeError``, ``struct.error``); the caller maps them to one error.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from fastavro._logical_writers import LOGICAL_WRITERS

Writer = Callable[[dict[str, Any]], bytes]
Reader = Callable[[bytes, int], tuple[dict[str, Any], int]]

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_SMALL = [bytes([z]) if z < 0x80 else bytes([(z & 0x7F) | 0x80, z >> 7]) for z in range(1 << 14)]
_DOUBLE, _FLOAT = struct.Struct("<d"), struct.Struct("<f")


class Unsupported(Exception):
    """The schema uses something this module leaves to fastavro."""


def _varint(z: int) -> bytes:
    """An unsigned varint (a zigzag-encoded long)."""
    if z < 16384:
        return _SMALL[z]
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _long(value: int) -> bytes:
    if value.__class__ is not int and not isinstance(value, int):
        raise TypeError(f"{value!r} is not an int")
    if not -(1 << 63) <= value < (1 << 63):
        raise ValueError(f"{value} does not fit a long")
    return _varint((value << 1) ^ (value >> 63))


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    byte = buf[pos]
    pos += 1
    value, shift = byte & 0x7F, 7
    while byte & 0x80:
        if shift > 63:
            raise ValueError("varint longer than a long")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
    return (value >> 1) ^ -(value & 1), pos


def _read_size(buf: bytes, pos: int) -> tuple[int, int]:
    size, pos = _read_long(buf, pos)
    if size < 0:
        raise ValueError(f"negative length {size}")
    return size, pos


def _logical(schema: dict[str, Any]) -> Callable[[Any, Any], Any]:
    """fastavro's own conversion of a value given as an object (a datetime, a date)."""
    key = f"{schema['type']}-{schema['logicalType']}"
    if key not in LOGICAL_WRITERS:
        raise Unsupported(key)
    return LOGICAL_WRITERS[key]


class _Source:
    """Python source being built: helper functions plus the names they need."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names: dict[str, Any] = {"_long": _long, "_varint": _varint, "_SMALL": _SMALL,
                                      "_DOUBLE": _DOUBLE, "_FLOAT": _FLOAT,
                                      "_read_long": _read_long, "_read_size": _read_size}
        self.records: dict[str, str] = {}  # record fullname -> its function's name
        self.named: dict[str, Any] = {}
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def constant(self, value: Any) -> str:
        name = self.fresh("_c")
        self.names[name] = value
        return name

    def resolve(self, schema: Any) -> Any:
        if isinstance(schema, str) and schema not in _PRIMITIVES:
            if schema not in self.named:
                raise Unsupported(f"unknown named type {schema}")
            return self.named[schema]
        if isinstance(schema, dict) and schema.get("type") in ("record", "enum", "fixed"):
            self.named.setdefault(schema["name"], schema)
        return schema

    def record_function(self, schema: dict[str, Any], prefix: str) -> tuple[str, bool]:
        """The name of a record type's function, and whether it is still to be written (a
        record met again, or inside itself, is called, not written twice)."""
        if schema.get("type") != "record":
            raise Unsupported("not a record")
        name = schema["name"]
        if name in self.records:
            return self.records[name], False
        self.records[name] = self.fresh(prefix)
        return self.records[name], True

    def compile(self, entry: str) -> Any:
        scope = dict(self.names)
        exec("\n".join(self.lines), scope)  # noqa: S102 - source built here from a schema
        return scope[entry]


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return "union"
    return schema["type"]


# -- writers --------------------------------------------------------------------------------
def compile_writer(schema: Any) -> Writer | None:
    """``record -> bytes`` for a parsed record schema, or None when fastavro must write it."""
    source = _Source()
    try:
        entry = _writer_record(source, source.resolve(schema))
    except Unsupported:
        return None
    source.lines += ["def write(record):", "    out = bytearray()",
                     f"    {entry}(record, out)", "    return bytes(out)"]
    return source.compile("write")  # type: ignore[no-any-return]


def _writer_record(source: _Source, schema: dict[str, Any]) -> str:
    function, to_write = source.record_function(schema, "_w")
    if not to_write:
        return function
    body: list[str] = []
    for field in schema["fields"]:
        value = source.fresh("v")
        if "default" in field:
            default = source.constant(field["default"])
            body.append(f"    {value} = r.get({field['name']!r}, {default})")
        else:
            body.append(f"    {value} = r[{field['name']!r}]")
        body += _write_value(source, field["type"], value, "    ")
    source.lines += [f"def {function}(r, out):", *(body or ["    pass"])]
    return function


def _write_value(source: _Source, schema: Any, value: str, indent: str) -> list[str]:
    schema = source.resolve(schema)
    kind = _kind(schema)
    if isinstance(schema, dict) and "logicalType" in schema:
        if kind not in ("int", "long"):
            raise Unsupported(f"logical type {schema['logicalType']} on {kind}")
        convert = source.constant(_logical(schema))
        plain = source.constant(schema)
        return [f"{indent}if {value}.__class__ is not int:",
                f"{indent}    {value} = {convert}({value}, {plain})",
                f"{indent}out += _long({value})"]
    if kind == "null":
        return [f"{indent}if {value} is not None:",
                f"{indent}    raise TypeError(f'{{{value}!r}} is not null')"]
    if kind == "boolean":
        return [f"{indent}if {value} is not True and {value} is not False:",
                f"{indent}    raise TypeError(f'{{{value}!r}} is not a boolean')",
                f"{indent}out += b'\\x01' if {value} else b'\\x00'"]
    if kind in ("int", "long"):
        return [f"{indent}out += _long({value})"]
    if kind in ("double", "float"):
        packer = "_DOUBLE" if kind == "double" else "_FLOAT"
        return [f"{indent}out += {packer}.pack({value})"]
    if kind in ("string", "bytes"):
        data = source.fresh("b")
        encode = f"{value}.encode()" if kind == "string" else f"bytes({value})"
        check = "str" if kind == "string" else "(bytes, bytearray, memoryview)"
        return [f"{indent}if not isinstance({value}, {check}):",
                f"{indent}    raise TypeError(f'{{{value}!r}} is not {kind}')",
                f"{indent}{data} = {encode}",
                f"{indent}out += _SMALL[len({data}) << 1] if len({data}) < 8192 "
                f"else _varint(len({data}) << 1)",
                f"{indent}out += {data}"]
    if kind == "fixed":
        size = schema["size"]
        return [f"{indent}if len({value}) != {size}:",
                f"{indent}    raise ValueError('fixed of {size} bytes')",
                f"{indent}out += bytes({value})"]
    if kind == "enum":
        index = source.constant({symbol: _long(n) for n, symbol in enumerate(schema["symbols"])})
        return [f"{indent}out += {index}[{value}]"]
    if kind == "record":
        return [f"{indent}{_writer_record(source, schema)}({value}, out)"]
    if kind in ("array", "map"):
        item = source.fresh("i")
        key = source.fresh("k")
        loop = (f"for {item} in {value}:" if kind == "array"
                else f"for {key}, {item} in {value}.items():")
        keyed = [] if kind == "array" else _write_value(source, "string", key, indent + "        ")
        return [f"{indent}if {value}:",
                f"{indent}    out += _long(len({value}))",
                f"{indent}    {loop}",
                *keyed,
                *_write_value(source, schema["items" if kind == "array" else "values"],
                              item, indent + "        "),
                f"{indent}out += b'\\x00'"]
    if kind == "union":
        branches = [source.resolve(branch) for branch in schema]
        if len(branches) != 2 or _kind(branches[0]) != "null" or _kind(branches[1]) == "null":
            raise Unsupported("a union other than [null, T]")
        return [f"{indent}if {value} is None:",
                f"{indent}    out += b'\\x00'",
                f"{indent}else:",
                f"{indent}    out += b'\\x02'",
                *_write_value(source, branches[1], value, indent + "    ")]
    raise Unsupported(kind)


# -- readers --------------------------------------------------------------------------------
def compile_reader(schema: Any) -> Reader | None:
    """``(payload, start) -> (record, end)`` for a parsed record schema, or None when fastavro
    must read it. ``end`` past ``len(payload)`` means the payload was cut short."""
    source = _Source()
    try:
        return source.compile(_reader_record(source, source.resolve(schema)))  # type: ignore[no-any-return]
    except Unsupported:
        return None


def _reader_record(source: _Source, schema: dict[str, Any]) -> str:
    function, to_write = source.record_function(schema, "_r")
    if not to_write:
        return function
    body = ["    r = {}"]
    for field in schema["fields"]:
        value = source.fresh("v")
        body += _read_value(source, field["type"], value, "    ")
        body.append(f"    r[{field['name']!r}] = {value}")
    source.lines += [f"def {function}(buf, pos):", *body, "    return r, pos"]
    return function


def _read_value(source: _Source, schema: Any, value: str, indent: str) -> list[str]:
    schema = source.resolve(schema)
    kind = _kind(schema)
    if isinstance(schema, dict) and "logicalType" in schema:
        raise Unsupported(f"logical type {schema['logicalType']} (read as objects)")
    if kind == "null":
        return [f"{indent}{value} = None"]
    if kind == "boolean":
        return [f"{indent}{value} = buf[pos]",
                f"{indent}if {value} > 1:",
                f"{indent}    raise ValueError(f'boolean byte {{{value}}}')",
                f"{indent}{value} = {value} == 1",
                f"{indent}pos += 1"]
    if kind in ("int", "long"):  # one byte for -64..63, the common case, read inline
        return [f"{indent}{value} = buf[pos]",
                f"{indent}if {value} < 0x80:",
                f"{indent}    {value} = ({value} >> 1) ^ -({value} & 1)",
                f"{indent}    pos += 1",
                f"{indent}else:",
                f"{indent}    {value}, pos = _read_long(buf, pos)"]
    if kind in ("double", "float"):
        unpacker, size = ("_DOUBLE", 8) if kind == "double" else ("_FLOAT", 4)
        return [f"{indent}{value} = {unpacker}.unpack_from(buf, pos)[0]", f"{indent}pos += {size}"]
    if kind in ("string", "bytes"):
        size = source.fresh("n")
        take = f"buf[pos:pos + {size}]" + (".decode()" if kind == "string" else "")
        return [f"{indent}{size} = buf[pos]",
                f"{indent}if {size} < 0x80 and not {size} & 1:",
                f"{indent}    {size} >>= 1",
                f"{indent}    pos += 1",
                f"{indent}else:",
                f"{indent}    {size}, pos = _read_size(buf, pos)",
                f"{indent}{value} = {take}",
                f"{indent}pos += {size}"]
    if kind == "fixed":
        size = schema["size"]
        return [f"{indent}{value} = buf[pos:pos + {size}]", f"{indent}pos += {size}"]
    if kind == "enum":
        symbols = source.constant(tuple(schema["symbols"]))
        index = source.fresh("e")
        return [f"{indent}{index}, pos = _read_size(buf, pos)",
                f"{indent}if {index} >= {len(schema['symbols'])}:",
                f"{indent}    raise ValueError(f'enum index {{{index}}} out of range')",
                f"{indent}{value} = {symbols}[{index}]"]
    if kind == "record":
        return [f"{indent}{value}, pos = {_reader_record(source, schema)}(buf, pos)"]
    if kind in ("array", "map"):
        count, item, key = source.fresh("n"), source.fresh("i"), source.fresh("k")
        store = (f"{value}.append({item})" if kind == "array" else f"{value}[{key}] = {item}")
        keyed = [] if kind == "array" else _read_value(source, "string", key, indent + "        ")
        return [f"{indent}{value} = {'[]' if kind == 'array' else '{}'}",
                f"{indent}while True:",
                f"{indent}    {count}, pos = _read_long(buf, pos)",
                f"{indent}    if {count} == 0:",
                f"{indent}        break",
                f"{indent}    if {count} < 0:",
                f"{indent}        {count} = -{count}",
                f"{indent}        _, pos = _read_size(buf, pos)",
                f"{indent}    for _ in range({count}):",
                *keyed,
                *_read_value(source, schema["items" if kind == "array" else "values"], item,
                             indent + "        "),
                f"{indent}        {store}"]
    if kind == "union":
        if len(schema) > 63:
            raise Unsupported("a union of more than 63 branches")
        branch = source.fresh("u")  # a branch's index is one byte: zigzag 2 * index
        lines = [f"{indent}{branch} = buf[pos]", f"{indent}pos += 1"]
        for number, option in enumerate(schema):
            lines.append(f"{indent}{'if' if number == 0 else 'elif'} {branch} == {2 * number}:")
            lines += _read_value(source, option, value, indent + "    ")
        return [*lines, f"{indent}else:",
                f"{indent}    raise ValueError(f'union branch {{{branch}}} out of range')"]
    raise Unsupported(kind)
