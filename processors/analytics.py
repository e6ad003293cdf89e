"""Delivery events -> OpenSearch documents, index names and the index template."""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from typing import Any

from core import json_text
from processors.commands import DeliveryEvent

DAY_MS = 86_400_000


def index_name(prefix: str, occurred_at_ms: int) -> str:
    """Monthly indices: ``<prefix>-YYYY.MM`` by the event's own time, not the indexing time."""
    return _index_of_day(prefix, occurred_at_ms // DAY_MS)


@lru_cache(maxsize=64)
def _index_of_day(prefix: str, day: int) -> str:
    when = dt.datetime.fromtimestamp(day * DAY_MS // 1000, tz=dt.UTC)
    return f"{prefix}-{when:%Y.%m}"


@lru_cache(maxsize=64)
def _action_head(index: str) -> str:
    """The bulk action line up to the document id, once per index."""
    return '{"index":{"_index":' + json.dumps(index) + ',"_id":'


def to_document(event: DeliveryEvent) -> dict[str, Any]:
    document = event.to_record()
    document["@timestamp"] = dt.datetime.fromtimestamp(
        event.occurred_at / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")
    del document["occurred_at"]
    return document


def bulk_body(prefix: str, events: list[DeliveryEvent]) -> str:
    """One bulk request body (NDJSON), serialised at once: opensearch-py's bulk helper
    serialises action by action, a third of the sink's time."""
    lines = []
    for event in events:
        lines.append(f"{_action_head(index_name(prefix, event.occurred_at))}"
                     f"{json.dumps(event.event_id)}}}}}")
        lines.append(json_text.dumps(to_document(event)))
    return "\n".join(lines) + "\n"


def document_properties() -> dict[str, Any]:
    """The mapping of a delivery event document (``dynamic: strict``: a field the mapping
    lacks is refused, never guessed).

    Identifiers no report groups or sorts by keep no doc values (the column store that
    aggregations read): unique per document, theirs were the largest to write and merge.
    They stay searchable, except ``event_id`` (the document's ``_id`` already) and
    ``command_id`` (one attempt's; ``idempotency_key`` names the email): those two are kept
    in ``_source`` only. ``python -m bench.index_cost``: OpenSearch's CPU to index and merge
    20,000 documents 1.09 s like this, 1.64 s with every field indexed with doc values."""
    keyword = {"type": "keyword"}
    searchable_id = {"type": "keyword", "doc_values": False}
    stored_only = {"type": "keyword", "index": False, "doc_values": False}
    return {
        "@timestamp": {"type": "date"},
        "event_id": stored_only, "status": keyword, "idempotency_key": keyword,
        "command_id": stored_only, "email_type": keyword, "priority": keyword,
        "locale": keyword, "shop_id": keyword, "recipient_key": searchable_id,
        "recipient_domain": keyword, "provider": keyword,
        "provider_message_id": searchable_id, "attempt": {"type": "integer"},
        "latency_ms": {"type": "double"},
        "reason": {"type": "text", "fields": {"raw": {"type": "keyword",
                                                      "ignore_above": 256}}},
        "source_event_id": searchable_id,
        "campaign_id": keyword, "variant": keyword, "bounce_type": keyword, "agent": keyword,
        "url": {"type": "keyword", "ignore_above": 2048},
    }


def missing_properties(mappings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per index (``GET <prefix>-*/_mapping``'s answer), the fields of today's mapping it
    lacks. Only those are added to an index an older template made: a field's parameters
    cannot change once it is mapped (its doc values, say), so a whole mapping put back on
    an older index would be refused."""
    wanted = document_properties()
    missing = {}
    for index, body in mappings.items():
        have = (body.get("mappings") or {}).get("properties") or {}
        lacking = {name: spec for name, spec in wanted.items() if name not in have}
        if lacking:
            missing[index] = lacking
    return missing


def index_template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 100,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0,
                         "refresh_interval": "1s"},
            "mappings": {"dynamic": "strict", "properties": document_properties()},
        },
    }
