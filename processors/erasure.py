"""Erasure (GDPR art. 17): what a request must hold, what flowmail deletes at once, and the
receipt that records it without personal data. What cannot be deleted at once (copies in
append-only topics) is gone within the erasure bound (streams/topics.ErasureLimits)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from core.vocab import RejectReason
from processors.errors import RejectedInput
from processors.validation import deliverable_address

REQUESTERS = ("customer", "operator", "api")


def validate_request(event: dict[str, Any]) -> None:
    if not str(event.get("shop_id") or "").strip():
        raise RejectedInput(RejectReason.MISSING_FIELD, "shop_id is empty")
    deliverable_address("email", event.get("email") or "")
    if event.get("requested_by") not in REQUESTERS:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            f"requested_by must be one of {', '.join(REQUESTERS)}")


def analytics_query(shop_id: str, key: str) -> dict[str, Any]:
    """The person's delivery events at the shop (by recipient key; no address is stored)."""
    return {"query": {"bool": {"filter": [{"term": {"recipient_key": key}},
                                          {"term": {"shop_id": shop_id}}]}}}


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, dt.datetime) else int(value)


def receipt(request: dict[str, Any], profiles_deleted: int, analytics_deleted: int,
            bound_s: int, now: dt.datetime) -> dict[str, Any]:
    """The record of what was done: counts, the bound and when it ends; no address, no id
    of the person."""
    requested = _ms(request["occurred_at"])
    receipt_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"flowmail-erasure:{request['event_id']}"))
    return {"event_id": receipt_id, "erasure_id": request["event_id"], "occurred_at": now,
            "schema_version": 1,
            "shop_id": request["shop_id"], "profiles_deleted": profiles_deleted,
            "analytics_deleted": analytics_deleted, "bound_s": bound_s,
            "complete_by": dt.datetime.fromtimestamp(requested / 1000 + bound_s, tz=dt.UTC)}
