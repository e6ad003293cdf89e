"""Campaign fan-out: segment matching, A/B variant assignment, unsubscribe tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from core.vocab import ConsentCategory, RejectReason
from processors.consent import granted
from processors.errors import RejectedInput
from processors.locales import negotiate
from processors.profiles import Profile


def matches(shop_id: str, segment: dict[str, Any], profile: Profile,
            category: str = ConsentCategory.MARKETING) -> bool:
    """The campaign's shop's customers with a current opt-in for its category only; then
    each non-empty criterion must hold (empty lists match all). A profile of another shop
    never matches: consent, and the customer relationship, belong to (shop, recipient)."""
    if (profile.get("shop_id") != shop_id or not profile.get("email")
            or not granted(profile, category)):
        return False
    locale = negotiate(profile.get("locale"), profile.get("country"))
    if segment.get("locales") and locale not in {negotiate(x, None) for x in segment["locales"]}:
        return False
    countries = {c.upper() for c in segment.get("countries") or []}
    if countries and (profile.get("country") or "").upper() not in countries:
        return False
    tags = set(segment.get("tags_any") or [])
    return not tags or bool(tags & set(profile.get("tags") or []))


def category_of(event: dict[str, Any]) -> str:
    """The consent category of a launch (schema v3; older launches are marketing)."""
    return event.get("category") or ConsentCategory.MARKETING.value


def audience(shop_id: str, segment: dict[str, Any], profiles: Iterable[Profile],
             category: str = ConsentCategory.MARKETING) -> list[Profile]:
    return [p for p in profiles if matches(shop_id, segment, p, category)]


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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_keys(secret: str | bytes) -> list[bytes]:
    """A rotation list ``new,old``: the first key signs, every key verifies."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return [key.strip() for key in raw.split(b",")] or [b""]


@lru_cache(maxsize=16)
def _signing_key(secret: str | bytes) -> bytes:
    """The key that signs (the first of the rotation list): once per secret, not per link."""
    return signing_keys(secret)[0]


@lru_cache(maxsize=16)
def key_id(key: bytes) -> str:
    """Names a key in a token without revealing it."""
    return _b64(hashlib.sha256(b"flowmail-unsubscribe-key\x1f" + key).digest()[:6])


def _mac(key: bytes, user_id: str, shop_id: str) -> bytes:
    return hmac.digest(key, f"{user_id}\x1f{shop_id}".encode(), "sha256")[:16]


def unsubscribe_token(secret: str | bytes, user_id: str, shop_id: str) -> str:
    """``<key id>.<user>.<shop>.<mac>``: verifiable without a lookup, forgeable only with the
    secret; the key id lets a rotated-out key still verify links already sent."""
    key = _signing_key(secret)
    return (f"{key_id(key)}.{_b64(user_id.encode())}.{_b64(shop_id.encode())}."
            f"{_b64(_mac(key, user_id, shop_id))}")


def verify_unsubscribe_token(secret: str | bytes, token: str) -> tuple[str, str] | None:
    """(user id, shop id) when the token is authentic, else None (constant-time compare).
    Tokens from before key ids (``<user>.<shop>.<mac>``) are checked against every key."""
    try:
        parts = token.split(".")
        if len(parts) == 4:
            kid, user_b64, shop_b64, mac_b64 = parts
            keys = [k for k in signing_keys(secret) if key_id(k) == kid]
        elif len(parts) == 3:
            user_b64, shop_b64, mac_b64 = parts
            keys = signing_keys(secret)
        else:
            return None
        user_id, shop_id = _unb64(user_b64).decode(), _unb64(shop_b64).decode()
        mac = _unb64(mac_b64)
    except (ValueError, UnicodeDecodeError):
        return None
    authentic = False
    for key in keys:
        authentic |= hmac.compare_digest(mac, _mac(key, user_id, shop_id))
    return (user_id, shop_id) if authentic else None


def unsubscribe_link(base_url: str, token: str) -> str:
    """The one-click unsubscribe URL of a recipient (or of a provider's placeholder)."""
    return f"{base_url}{'&' if '?' in base_url else '?'}token={token}"


def unsubscribe_parts(data: dict[str, Any]) -> tuple[str, str]:
    """(base URL, token) of a campaign command's unsubscribe link, from its own fields;
    commands written before those fields existed (an upgrade with commands in flight) carry
    only the URL, which is split where the token starts."""
    if "unsubscribe_token" in data:
        return data["unsubscribe_base_url"], data["unsubscribe_token"]
    base, _, token = data["unsubscribe_url"].partition("token=")
    return base[:-1], token
