"""Topics with their serializers: a stage asks for the serde of a topic it reads or writes and
never names an Avro subject; the subject of each topic is declared once, with the topic
(streams/topics.py, from the catalogue for domain events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.avro import SchemaRegistry
from core.settings import Settings
from processors.validation import payload_size
from streams.topics import topic_specs


class AsRecord(Protocol):
    def to_record(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Serde:
    """Confluent-framed Avro of one topic's values. ``max_bytes``: a payload over it is
    refused before any decoding work (FLOWMAIL_MAX_PAYLOAD_BYTES)."""

    topic: str
    subject: str
    registry: SchemaRegistry
    max_bytes: int | None = None

    def decode(self, payload: bytes | None, *, millis: bool = False) -> dict[str, Any]:
        """``millis``: timestamps as epoch milliseconds (core/avro.py)."""
        if self.max_bytes is not None:
            payload_size(payload or b"", self.max_bytes)
        return self.registry.decode(self.subject, payload, millis=millis)

    def encode(self, value: AsRecord | dict[str, Any], check: bool = False) -> bytes:
        """``check``: validate first so the error names the field (records from outside);
        flowmail's own records are built valid."""
        record = value if isinstance(value, dict) else value.to_record()
        return self.registry.encode(self.subject, record, check=check)


def subjects(settings: Settings) -> dict[str, str]:
    """Topic -> the Avro subject of its values, for every topic that has one."""
    return {spec.name: spec.subject for spec in topic_specs(settings) if spec.subject}


def serdes(settings: Settings, registry: SchemaRegistry, topics: list[str],
           max_bytes: int | None = None) -> dict[str, Serde]:
    """The serdes of ``topics``; a topic without a declared subject fails here, at boot."""
    known = subjects(settings)
    missing = [topic for topic in topics if topic not in known]
    if missing:
        raise ValueError(f"no Avro subject declared for {missing} (streams/topics.py)")
    return {topic: Serde(topic, known[topic], registry, max_bytes) for topic in topics}


def serde(settings: Settings, registry: SchemaRegistry, topic: str,
          max_bytes: int | None = None) -> Serde:
    return serdes(settings, registry, [topic], max_bytes)[topic]
