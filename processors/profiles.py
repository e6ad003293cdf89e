"""The profiles table: what later events about a user lack (locale, name, address, opt-in)."""

from __future__ import annotations

from typing import Any

Profile = dict[str, Any]


def profile_from_user_created(event: dict[str, Any], partition: int) -> Profile:
    """``partition`` is kept so a campaign fan-out scans each partition's profiles once."""
    user = event["user"]
    return {
        "user_id": user["user_id"], "email": user["email"], "first_name": user["first_name"],
        "last_name": user["last_name"], "locale": user.get("locale"),
        "country": user.get("country"), "marketing_opt_in": bool(event.get("marketing_opt_in")),
        "tags": list(event.get("tags") or []), "shop_id": event["shop"]["shop_id"],
        "partition": partition,
    }
