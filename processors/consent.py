"""Consent: each (shop, person, category) opt-in or opt-out, with when, where and what
wording it was given, as events (consent.changed); the profile keeps the current state.

A change applies only when it is newer than what the profile holds for that category, so
events arriving out of order (another topic, a replay) never undo a later decision. The
signup's ``marketing_opt_in`` is the first marketing consent (source ``signup``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.vocab import ConsentCategory, ConsentSource, RejectReason
from processors.errors import RejectedInput

Consents = dict[str, dict[str, Any]]  # category -> {granted, at, source, wording_version}


def _ms(value: Any) -> int:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def entry(granted: bool, at: Any, source: str, wording_version: str | None) -> dict[str, Any]:
    return {"granted": bool(granted), "at": _ms(at), "source": source,
            "wording_version": wording_version}


def validate_change(event: dict[str, Any]) -> None:
    """A consent.changed event names a known category and source, for a shop and a user."""
    for name in ("shop_id", "user_id"):
        if not str(event.get(name) or "").strip():
            raise RejectedInput(RejectReason.MISSING_FIELD, f"{name} is empty")
    if event.get("category") not in set(ConsentCategory):
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            f"category must be one of {', '.join(ConsentCategory)}")
    if event.get("source") not in set(ConsentSource):
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            f"source must be one of {', '.join(ConsentSource)}")


def apply(consents: Consents | None, category: str, change: dict[str, Any]) -> Consents:
    """``consents`` with ``change`` for ``category`` if it is not older than what is there."""
    current = dict(consents or {})
    held = current.get(category)
    if held is None or change["at"] >= held["at"]:
        current[category] = change
    return current


def apply_event(consents: Consents | None, event: dict[str, Any]) -> Consents:
    return apply(consents, event["category"],
                 entry(event["granted"], event["occurred_at"], event["source"],
                       event.get("wording_version")))


def from_signup(event: dict[str, Any], consents: Consents | None = None) -> Consents:
    """user.created: its marketing opt-in (or not) as of the signup, unless newer is held."""
    return apply(consents, ConsentCategory.MARKETING.value,
                 entry(bool(event.get("marketing_opt_in")), event["occurred_at"],
                       ConsentSource.SIGNUP.value, None))


def granted(profile: dict[str, Any], category: str) -> bool:
    """A current opt-in for ``category``. Profiles stored before consent records existed
    carry only ``marketing_opt_in``: that is their marketing consent."""
    held = (profile.get("consent") or {}).get(category)
    if held is not None:
        return bool(held["granted"])
    return category == ConsentCategory.MARKETING and bool(profile.get("marketing_opt_in"))


def categories(profile: dict[str, Any]) -> dict[str, bool]:
    """Every category with the person's current answer (no record: not opted in)."""
    return {category.value: granted(profile, category.value) for category in ConsentCategory}


def change_event(event_id: str, shop_id: str, user_id: str, category: str, granted_: bool,
                 source: str, wording_version: str | None, at: dt.datetime) -> dict[str, Any]:
    """A consent.changed record, as flowmail's own pages publish them."""
    return {"event_id": event_id, "occurred_at": at, "shop_id": shop_id, "user_id": user_id,
            "category": category, "granted": granted_, "source": source,
            "wording_version": wording_version}
