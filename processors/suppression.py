"""Suppression scopes: who must not get which mail, as pure functions over table entries.

A suppression belongs to a recipient key (the Kafka key, co-partitioned with the commands)
and holds scopes, merged in the value: ``{"scopes": {"<shop>/<category>": {"reason", "at",
"source"}}}`` where shop and category may be ``*``. Producers publish *changes* (one scope
added or lifted); the suppressions agent merges them into the table.

Scope by reason: a hard bounce, repeated soft bounces or a complaint is ``*/*`` (the mailbox
is dead, or its owner reported the platform's mail: sender reputation is shared by every
shop); an unsubscribe is ``<shop>/marketing``; a manual suppression names its scope.
Security mail (password resets) is never suppressed: the recipient asked for it a moment ago.

Soft bounces (a mailbox full, a server refusing for now) are counted, not suppressed: a
``{"soft_bounce": true, "at", "source"}`` change adds its time to the entry's
``soft_bounces``, and the one that makes ``limit`` of them within ``window_ms`` (by the
changes' own times, so every process that merges the topic agrees) adds a ``*/*`` scope.

Migration: entries written before scopes (``{"reason": ..., "at": ...}``) read as ``*/*``,
except an unsubscribe, which reads as ``*/marketing``: its shop was not recorded, so the
narrowest rule that still honours the click is "no marketing from any shop".
"""

from __future__ import annotations

from typing import Any

from core.catalogue import CATEGORY_OF, EmailType
from core.vocab import Category, RejectReason, SuppressionReason
from processors.errors import RejectedInput

ANY = "*"
Entry = dict[str, Any]


def scope_for(reason: SuppressionReason, shop_id: str | None = None,
              category: Category | None = None) -> str:
    """The scope a new suppression of ``reason`` gets (see the module docstring)."""
    if reason in {SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT,
                  SuppressionReason.SOFT_BOUNCES}:
        return f"{ANY}/{ANY}"
    if reason is SuppressionReason.UNSUBSCRIBE:
        if not shop_id:
            raise ValueError("an unsubscribe needs the shop it unsubscribes from")
        return f"{shop_id}/{Category.MARKETING.value}"
    if category is Category.SECURITY:
        raise ValueError("security mail cannot be suppressed")
    return f"{shop_id or ANY}/{category.value if category else ANY}"


def change(reason: SuppressionReason | None, scope: str, at: int, source: str) -> Entry:
    """A change record for email.suppressions; ``reason`` None lifts ``scope``."""
    if reason is None:
        return {"lift": scope, "at": at, "source": source}
    return {"scope": scope, "reason": reason.value, "at": at, "source": source}


def parse_change(value: Any) -> Entry | None:
    """A change record (or a legacy whole entry); None is a tombstone that lifts all."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            "a suppression change must be a JSON object")
    if "lift" in value:
        _check_scope(value["lift"])
        return value
    if value.get("soft_bounce") is True:
        if not isinstance(value.get("at"), int):
            raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "a soft bounce needs its time")
        return value
    try:
        SuppressionReason(value.get("reason"))
    except ValueError as err:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, f"reason must be one of "
                            f"{[r.value for r in SuppressionReason]}") from err
    if "scope" not in value:  # a legacy whole entry, published before scopes existed
        value = {**value, "scope": _legacy_scope(value["reason"])}
    _check_scope(value["scope"])
    return value


def soft_bounce(at: int, source: str) -> Entry:
    """A change record counting one soft bounce (see the module docstring)."""
    return {"soft_bounce": True, "at": at, "source": source}


SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_WINDOW_MS = 7 * 24 * 3600 * 1000


def merge(entry: Entry | None, update: Entry | None, soft_limit: int = SOFT_BOUNCE_LIMIT,
          soft_window_ms: int = SOFT_BOUNCE_WINDOW_MS) -> Entry | None:
    """The entry after ``update``; None when nothing is left (the table drops the key)."""
    if update is None:
        return None
    scopes = dict(migrate(entry)["scopes"]) if entry else {}
    soft = list(entry.get("soft_bounces", [])) if entry else []
    if "lift" in update:
        scopes.pop(update["lift"], None)
    elif update.get("soft_bounce") is True:
        at = update["at"]
        soft = [t for t in soft if t > at - soft_window_ms] + [at]
        if len(soft) >= soft_limit:
            scopes.setdefault(f"{ANY}/{ANY}", {
                "reason": SuppressionReason.SOFT_BOUNCES.value, "at": at,
                "source": update.get("source", "")})
            soft = []
    else:
        scopes[update["scope"]] = {k: update[k] for k in ("reason", "at", "source")
                                   if k in update}
    merged: Entry = {}
    if scopes:
        merged["scopes"] = scopes
    if soft:
        merged["soft_bounces"] = soft
    return merged or None


def migrate(entry: Entry) -> Entry:
    """Entries from before scopes become scoped (rule in the module docstring)."""
    if "scopes" in entry:
        return entry
    if "reason" not in entry:  # soft bounces counted, nothing suppressed yet
        return {"scopes": {}}
    return {"scopes": {_legacy_scope(entry.get("reason", "")): dict(entry)}}


def suppressing(entry: Entry | None, shop_id: str, email_type: EmailType) -> str | None:
    """Why this email must not go out (``reason (scope)``), or None when it may."""
    category = CATEGORY_OF[email_type]
    if not entry or category is Category.SECURITY:
        return None
    for scope, info in migrate(entry)["scopes"].items():
        shop, _, scoped_category = scope.partition("/")
        if shop in {ANY, shop_id} and scoped_category in {ANY, category.value}:
            return f"{info.get('reason', 'unknown')} ({scope})"
    return None


def _legacy_scope(reason: str) -> str:
    if reason == SuppressionReason.UNSUBSCRIBE.value:
        return f"{ANY}/{Category.MARKETING.value}"
    return f"{ANY}/{ANY}"


def _check_scope(scope: Any) -> None:
    shop, sep, category = str(scope).partition("/")
    if not sep or not shop or category not in {ANY, *(c.value for c in Category)}:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            f"scope {scope!r} is not <shop|*>/<category|*>")

