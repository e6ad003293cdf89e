"""Faust codecs for flowmail's Avro subjects, for teams that consume its topics with Faust.

    import streams.codecs  # registers "flowmail.<subject>" codecs
    deliveries = app.topic("email.delivery", value_serializer="flowmail.email.delivery-value")

flowmail's own agents read raw bytes and decode inside the agent instead: a codec error in
Faust skips the record with a log line, and flowmail must dead-letter it with its reason.
"""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from core.avro import registry


class ConfluentAvro(codecs.Codec):
    """Confluent-framed Avro for one subject; schemas come parsed from the shared registry."""

    def __init__(self, subject: str, **kwargs: Any) -> None:
        super().__init__(subject=subject, **kwargs)
        self.subject = subject

    def _dumps(self, value: Any) -> bytes:
        return registry().encode(self.subject, value)

    def _loads(self, payload: bytes) -> Any:
        return registry().decode(self.subject, payload)


def codec_name(subject: str) -> str:
    return f"flowmail.{subject}"


for _subject in registry().subjects():
    codecs.register(codec_name(_subject), ConfluentAvro(_subject))
