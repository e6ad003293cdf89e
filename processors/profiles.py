"""The profiles table: what later events about a user lack (locale, name, address, opt-in).

A profile belongs to (shop, user): user ids of two shops may collide, so the table key is
``profile_key(shop_id, user_id)``. Kafka still keys the events by user id (co-partitioning
does not change); the shop is part of the table key only.

Migration: entries written before the shop was part of the key are keyed by the user id
alone; their value carries ``shop_id``, so a lookup that misses the new key reads the old one
and accepts it only when its ``shop_id`` is the shop asked for.
"""

from __future__ import annotations

from typing import Any

from processors import consent

Profile = dict[str, Any]


def profile_from_user_created(event: dict[str, Any], partition: int,
                              held: Profile | None = None) -> Profile:
    """``partition`` is kept so a campaign fan-out scans each partition's profiles once;
    ``held``: what the table had (its newer consent records survive the signup's)."""
    user = event["user"]
    return {
        "user_id": user["user_id"], "email": user["email"], "first_name": user["first_name"],
        "last_name": user["last_name"], "locale": user.get("locale"),
        "country": user.get("country"), "marketing_opt_in": bool(event.get("marketing_opt_in")),
        "tags": list(event.get("tags") or []), "shop_id": event["shop"]["shop_id"],
        "shop_name": event["shop"]["name"], "partition": partition,
        "consent": consent.from_signup(event, (held or {}).get("consent")),
    }


def profile_with_consent(held: Profile | None, event: dict[str, Any], partition: int
                         ) -> Profile:
    """The profile after a consent.changed event. Before the person's user.created has
    arrived (another topic: no order between them) it is a stub without an address, which
    no campaign matches and the signup later completes."""
    base = held or {"user_id": event["user_id"], "shop_id": event["shop_id"],
                    "partition": partition}
    return {**base, "consent": consent.apply_event(base.get("consent"), event)}


def profile_key(shop_id: str, user_id: str) -> str:
    return f"{shop_id}\x1f{user_id}"


def lookup(table: Any, shop_id: str, user_id: str) -> Profile | None:
    """The profile of ``user_id`` at ``shop_id`` (never another shop's)."""
    profile = table.get(profile_key(shop_id, user_id))
    if profile is None:
        legacy = table.get(user_id)
        if legacy and legacy.get("shop_id") == shop_id:
            profile = legacy
    return profile
