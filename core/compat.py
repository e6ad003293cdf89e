"""Schema evolution rules for upstream teams, checked between consecutive versions.

A new version must let new readers read old data and old readers read new data:
* a field added to a record needs a default;
* a field removed from a record must have had a default;
* a field keeps its type, except Avro's promotions (int -> long/float/double, long ->
  float/double, float -> double, string <-> bytes) and widening to a union that contains it;
* enum symbols may be added only if the enum has a default, and never removed.
"""

from __future__ import annotations

from typing import Any

PROMOTIONS = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"),
              ("long", "double"), ("float", "double"), ("string", "bytes"), ("bytes", "string")}


def _named(schema: Any, names: dict[str, Any]) -> Any:
    if isinstance(schema, str) and schema in names:
        return names[schema]
    if isinstance(schema, dict) and schema.get("type") in {"record", "enum", "fixed"}:
        names.setdefault(schema["name"], schema)
        if "namespace" in schema:
            names.setdefault(f"{schema['namespace']}.{schema['name']}", schema)
    return schema


def _kind(schema: Any) -> str:
    if isinstance(schema, list):
        return "union"
    if isinstance(schema, dict):
        if schema.get("logicalType"):
            return f"{schema['type']}:{schema['logicalType']}"
        return schema["type"] if isinstance(schema["type"], str) else _kind(schema["type"])
    return schema


def problems(old: Any, new: Any, path: str = "", names: tuple[dict, dict] | None = None
             ) -> list[str]:
    """Every rule ``new`` breaks against ``old``; empty when the change is compatible."""
    old_names, new_names = names or ({}, {})
    old, new = _named(old, old_names), _named(new, new_names)
    old_kind, new_kind = _kind(old), _kind(new)
    where = path or "<root>"
    if new_kind == "union" and old_kind != "union":
        branches = [_kind(_named(b, new_names)) for b in new]
        return [] if old_kind in branches else [f"{where}: {old_kind} is not in the new union"]
    if old_kind != new_kind:
        if (old_kind, new_kind) in PROMOTIONS:
            return []
        return [f"{where}: type changed from {old_kind} to {new_kind}"]
    if old_kind == "record":
        return _record_problems(old, new, path, (old_names, new_names))
    if old_kind == "enum":
        removed = set(old["symbols"]) - set(new["symbols"])
        added = set(new["symbols"]) - set(old["symbols"])
        found = [f"{where}: enum symbols removed: {sorted(removed)}"] if removed else []
        if added and "default" not in new:
            found.append(f"{where}: enum symbols added without an enum default: {sorted(added)}")
        return found
    if old_kind == "array":
        return problems(old["items"], new["items"], f"{path}[]", (old_names, new_names))
    if old_kind == "map":
        return problems(old["values"], new["values"], f"{path}{{}}", (old_names, new_names))
    if old_kind == "union":
        return _union_problems(old, new, where, (old_names, new_names))
    return []


def _record_problems(old: dict, new: dict, path: str, names: tuple[dict, dict]) -> list[str]:
    old_fields = {f["name"]: f for f in old["fields"]}
    new_fields = {f["name"]: f for f in new["fields"]}
    found = []
    for name, field in new_fields.items():
        if name not in old_fields and "default" not in field:
            found.append(f"{path}.{name}: added without a default")
    for name, field in old_fields.items():
        if name not in new_fields and "default" not in field:
            found.append(f"{path}.{name}: required field removed")
        elif name in new_fields:
            found += problems(field["type"], new_fields[name]["type"], f"{path}.{name}", names)
    return found


def _union_problems(old: list, new: list, where: str, names: tuple[dict, dict]) -> list[str]:
    new_kinds = {_kind(_named(b, names[1])) for b in new}
    old_kinds = [_kind(_named(b, names[0])) for b in old]
    missing = [kind for kind in old_kinds if kind not in new_kinds]
    return [f"{where}: union lost {missing}"] if missing else []
