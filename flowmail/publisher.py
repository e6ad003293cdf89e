"""The publisher SDK for upstream services: validate, encode and publish domain events.

    with Publisher("127.0.0.1:9092") as publisher:
        publisher.publish("order.placed", event)

Idempotent producer (``enable.idempotence``, ``acks=all``): a retried produce never duplicates
an event in the log. ``publish`` raises ``ContractError`` naming the field before anything is
sent; broker-side failures are raised by ``flush``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from core import kafka_config
from core.avro import ContractError, SchemaRegistry, registry
from core.catalogue import BY_TOPIC, STATE_EVENTS
from core.kafka_security import KafkaSecurity

# librdkafka retries transient broker states itself (e.g. "coordinator load in progress" right
# after a broker starts); what it cannot recover from reaches the delivery callback.
logging.getLogger("flowmail.kafka").setLevel(logging.ERROR)


PUBLISHABLE = {**BY_TOPIC, **{event.topic: event for event in STATE_EVENTS}}


def default_key(event_type: str, event: dict[str, Any]) -> str:
    """The key the catalogue declares (core/catalogue.py), or the event id without one."""
    try:
        return PUBLISHABLE[event_type].key_of(event)
    except (KeyError, TypeError):
        return str(event.get("event_id", ""))


class PublishError(RuntimeError):
    """The broker did not accept one or more events."""


class Publisher:
    def __init__(self, bootstrap: str, schemas: SchemaRegistry | None = None,
                 security: KafkaSecurity | None = None, **producer_config: Any) -> None:
        """``security``: the cluster's TLS and SASL (default: the FLOWMAIL_KAFKA_* settings,
        core/kafka_security.py)."""
        self.schemas = schemas or registry()
        self._failures: list[str] = []
        self.delivered = 0
        self._producer = Producer(kafka_config.producer_config(
            bootstrap, security, **{"linger.ms": 5, "compression.type": "lz4", **producer_config}))

    def subject(self, event_type: str) -> str:
        if event_type not in PUBLISHABLE:
            raise ContractError("unknown_event_type",
                                f"{event_type!r} is not one of {', '.join(PUBLISHABLE)}")
        return PUBLISHABLE[event_type].subject

    def schema(self, event_type: str) -> Any:
        """The parsed schema events of ``event_type`` are written with (for ``from_json``)."""
        return self.schemas.reader(self.subject(event_type)).parsed

    def encode(self, event_type: str, event: dict[str, Any]) -> bytes:
        return self.schemas.encode(self.subject(event_type), event)

    def publish(self, event_type: str, event: dict[str, Any], key: str | None = None) -> None:
        payload = self.encode(event_type, event)
        self.send_encoded(event_type, payload, key or default_key(event_type, event))

    def send_encoded(self, event_type: str, payload: bytes, key: str) -> None:
        """Produce an already validated payload (see ``encode``)."""
        self._producer.produce(event_type, value=payload, key=key.encode(),
                               on_delivery=self._on_delivery)
        self._producer.poll(0)

    def _on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append(f"{msg.topic()}: {err.str()}")
        else:
            self.delivered += 1

    def flush(self, timeout_s: float = 30.0) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise PublishError(f"{remaining} events not acknowledged within {timeout_s}s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishError(f"{len(failures)} events refused: {failures[:3]}")

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()


def from_json(schema: Any, value: Any) -> Any:
    """JSON -> Avro-ready value: ISO strings become datetimes/dates for logical types."""
    if isinstance(schema, list):
        if value is None:
            return None
        for branch in schema:
            if branch != "null":
                return from_json(branch, value)
        return value
    if isinstance(schema, dict):
        kind, logical = schema.get("type"), schema.get("logicalType")
        if kind == "record" and isinstance(value, dict):
            return {**value, **{f["name"]: from_json(f["type"], value[f["name"]])
                                for f in schema["fields"] if f["name"] in value}}
        if kind == "array" and isinstance(value, list):
            return [from_json(schema["items"], item) for item in value]
        if logical == "timestamp-millis" and isinstance(value, str):
            return _parse(value, dt.datetime.fromisoformat)
        if logical == "date" and isinstance(value, str):
            return _parse(value, dt.date.fromisoformat)
    return value


def _parse(text: str, parser: Any) -> Any:
    try:
        return parser(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise ContractError("schema_mismatch", f"{text!r} is not an ISO 8601 date/time") from err
