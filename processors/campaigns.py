"""Campaign fan-out: segment matching, A/B variant assignment, unsubscribe tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from flowmail.vocab import RejectReason
from processors.errors import RejectedInput
from processors.locales import negotiate
from processors.profiles import Profile


def matches(shop_id: str, segment: dict[str, Any], profile: Profile) -> bool:
    """The campaign's shop's opted-in customers only; then each non-empty criterion must hold
    (empty lists match all). A profile of another shop never matches: consent, and the
    customer relationship, belong to (shop, recipient)."""
    if profile.get("shop_id") != shop_id or not profile.get("marketing_opt_in"):
        return False
    locale = negotiate(profile.get("locale"), profile.get("country"))
    if segment.get("locales") and locale not in {negotiate(x, None) for x in segment["locales"]}:
        return False
    countries = {c.upper() for c in segment.get("countries") or []}
    if countries and (profile.get("country") or "").upper() not in countries:
        return False
    tags = set(segment.get("tags_any") or [])
    return not tags or bool(tags & set(profile.get("tags") or []))


def audience(shop_id: str, segment: dict[str, Any], profiles: Iterable[Profile]
             ) -> list[Profile]:
    return [p for p in profiles if matches(shop_id, segment, p)]


def choose_variant(campaign_id: str, user_id: str, variants: list[dict[str, Any]]
                   ) -> dict[str, Any]:
    """Deterministic weighted split: a user always gets the same variant of a campaign."""
    if not variants:
        raise RejectedInput(RejectReason.MISSING_FIELD, "campaign has no variants")
    total = sum(v["weight"] for v in variants)
    if total <= 0 or any(v["weight"] < 0 for v in variants):
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "variant weights must be positive")
    digest = hashlib.sha256(f"{campaign_id}\x1f{user_id}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % total
    for variant in variants:
        bucket -= variant["weight"]
        if bucket < 0:
            return variant
    return variants[-1]  # unreachable: buckets cover the total


def unsubscribe_token(secret: bytes, user_id: str, shop_id: str) -> str:
    """``<user>.<shop>.<mac>``: verifiable without a lookup, forgeable only with the secret."""
    payload = f"{user_id}\x1f{shop_id}".encode()
    mac = hmac.new(secret, payload, hashlib.sha256).digest()[:16]
    encode = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    return f"{encode(user_id.encode())}.{encode(shop_id.encode())}.{encode(mac)}"


def verify_unsubscribe_token(secret: bytes, token: str) -> tuple[str, str] | None:
    """(user id, shop id) when the token is authentic, else None (constant-time compare)."""
    try:
        user_b64, shop_b64, mac_b64 = token.split(".")
        decode = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
        user_id, shop_id = decode(user_b64).decode(), decode(shop_b64).decode()
        mac = decode(mac_b64)
    except (ValueError, UnicodeDecodeError):
        return None
    expected = hmac.new(secret, f"{user_id}\x1f{shop_id}".encode(), hashlib.sha256).digest()[:16]
    return (user_id, shop_id) if hmac.compare_digest(mac, expected) else None
