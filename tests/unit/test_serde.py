"""Topics carry their serializers (streams/serde.py) and one error policy (DeadLetters.attempt):
stages never name an Avro subject nor write their own dead-letter handling."""

from __future__ import annotations

import ast
import datetime as dt

import pytest

from core.avro import registry
from core.catalogue import CATALOGUE
from core.settings import PROJECT_ROOT, Settings
from core.vocab import Priority
from flowmail.samples import SAMPLES
from processors.errors import RejectedInput
from streams.dlq import DeadLetters
from streams.serde import serde, serdes, subjects
from streams.topics import COMMAND_SUBJECT, DELIVERY


def test_every_topic_with_records_knows_its_subject():
    known = subjects(Settings())
    assert {e.topic: known[e.topic] for e in CATALOGUE} == {e.topic: e.subject for e in CATALOGUE}
    assert {known[p.topic] for p in Priority} == {known[p.retry_topic] for p in Priority} == {
        COMMAND_SUBJECT}
    assert known[DELIVERY] == f"{DELIVERY}-value"
    with pytest.raises(ValueError, match="no Avro subject"):
        serdes(Settings(), registry(), ["email.dlq"])


def test_a_domain_serde_round_trips_and_refuses_oversized_payloads():
    event = SAMPLES["order.placed"](1, dt.datetime(2026, 11, 30, tzinfo=dt.UTC))
    orders = serde(Settings(), registry(), "order.placed", max_bytes=64)
    payload = registry().encode("order.placed-value", event)
    with pytest.raises(RejectedInput, match="FLOWMAIL_MAX_PAYLOAD_BYTES"):
        orders.decode(payload)
    assert serde(Settings(), registry(), "order.placed").decode(payload)["order_id"] == (
        event["order_id"])


class _Record:
    topic, partition, offset, timestamp, key, value = "order.placed", 0, 7, 0, b"k", b"\x00bad"


async def test_attempt_dead_letters_what_the_work_raises_and_moves_on():
    sent: list[list[tuple[str, bytes]]] = []

    async def send_acked(key, value, headers):
        sent.append(headers)

    dead = DeadLetters(send_acked, 1024)
    assert await dead.attempt(_Record(), "router", lambda: 41 + 1) == 42

    async def later():
        return "done"
    assert await dead.attempt(_Record(), "router", later) == "done"
    decoder = serde(Settings(), registry(), "order.placed")
    assert await dead.attempt(_Record(), "router", lambda: decoder.decode(b"\x00bad")) is None
    [headers] = sent
    assert dict(headers)["flowmail.reason"] == b"undecodable"
    assert dict(headers)["flowmail.source_offset"] == b"7"


def test_no_stage_names_a_subject_or_catches_for_the_dead_letter_queue():
    """Stages use their topics' serdes and ``DeadLetters.attempt``."""
    for path in (PROJECT_ROOT / "streams").rglob("*.py"):
        if path.name in {"topics.py", "serde.py", "dlq.py", "codecs.py"}:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not node.value.endswith("-value"), f"{path.name} names {node.value}"
            if isinstance(node, ast.JoinedStr):
                assert "-value" not in ast.unparse(node), f"{path.name}: {ast.unparse(node)}"
            if isinstance(node, ast.ExceptHandler):
                body = ast.unparse(node)
                assert "reject(" not in body, f"{path.name} dead-letters by hand: {body[:80]}"
