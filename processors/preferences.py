"""The preference centre's link and page: a signed, expiring token names (shop, user); the page
shows that person's consent per category at that shop and turns their changes into
consent.changed events.

The token is ``<key id>.<user>.<shop>.<expiry>.<mac>``: verifiable without a lookup, forgeable
only with the secret (the unsubscribe secret, under its own label, so an unsubscribe token
is never a preferences token), refused after its expiry. It carries the platform user id,
never the address.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, select_autoescape

from core.vocab import ConsentCategory, ConsentSource
from processors.consent import change_event

WORDING_VERSION = "preferences-v1"  # the page's text below; change it when the text changes
LABELS = {
    ConsentCategory.MARKETING: ("Offers and newsletters", "Sales, discounts and our newsletter."),
    ConsentCategory.PRODUCT_NEWS: ("Product news", "New products and back-in-stock notices."),
    ConsentCategory.SURVEYS: ("Reviews and surveys", "Requests to review a purchase or answer "
                                                     "a short survey."),
}


class TokenRefused(ValueError):
    """``reason``: forged (or malformed) or expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=8)
def _keys(secret: bytes) -> tuple[bytes, ...]:
    """Each configured key, derived for this use (``new,old`` rotates); once per secret, not
    per recipient."""
    return tuple(hmac.new(key.strip(), b"flowmail-preferences", hashlib.sha256).digest()
                 for key in secret.split(b",") if key.strip())


@lru_cache(maxsize=8)
def _kid(key: bytes) -> str:
    return _b64(hashlib.sha256(b"kid\x1f" + key).digest()[:6])


def _mac(key: bytes, user_id: str, shop_id: str, expires: int) -> bytes:
    return hmac.digest(key, f"{user_id}\x1f{shop_id}\x1f{expires}".encode(), "sha256")[:16]


def token(secret: bytes, user_id: str, shop_id: str, expires_at: int) -> str:
    """``expires_at``: epoch seconds after which the link is refused."""
    key = _keys(secret)[0]
    return (f"{_kid(key)}.{_b64(user_id.encode())}.{_b64(shop_id.encode())}."
            f"{expires_at:x}.{_b64(_mac(key, user_id, shop_id, expires_at))}")


def verify(secret: bytes, text: str, now: float) -> tuple[str, str]:
    """(user id, shop id) of an authentic, unexpired token; else ``TokenRefused``."""
    try:
        kid, user_b64, shop_b64, expiry, mac_b64 = text.split(".")
        user_id, shop_id = _unb64(user_b64).decode(), _unb64(shop_b64).decode()
        expires, mac = int(expiry, 16), _unb64(mac_b64)
    except (ValueError, UnicodeDecodeError) as err:
        raise TokenRefused("forged") from err
    authentic = any(hmac.compare_digest(_mac(key, user_id, shop_id, expires), mac)
                    for key in _keys(secret) if _kid(key) == kid)
    if not authentic:
        raise TokenRefused("forged")
    if now > expires:
        raise TokenRefused("expired")
    return user_id, shop_id


def link(base_url: str, text: str) -> str:
    """Tokens are URL-safe as they are (base64url, hex, dots); a batch API's placeholder must
    stay as it is too."""
    return f"{base_url.rstrip('/')}/preferences/?token={text}"


@dataclass(frozen=True)
class Links:
    """How a campaign's fan-out makes each recipient's link (processors/routing.py)."""

    base_url: str
    secret: bytes
    expires_at: int  # epoch seconds

    def token_for(self, profile: dict[str, Any]) -> str:
        return token(self.secret, profile["user_id"], profile["shop_id"], self.expires_at)


def changes(user_id: str, shop_id: str, current: dict[str, bool], wanted: dict[str, bool],
            now: dt.datetime) -> list[dict[str, Any]]:
    """One consent.changed event per category whose answer the person changed."""
    return [change_event(str(uuid.uuid4()), shop_id, user_id, category, wanted[category],
                         ConsentSource.PREFERENCE_CENTRE.value, WORDING_VERSION, now)
            for category in (c.value for c in ConsentCategory)
            if category in wanted and bool(current.get(category)) != wanted[category]]


def wanted_from_form(form: dict[str, str]) -> dict[str, bool]:
    """The checkboxes as posted (a box not ticked is not sent); "unsubscribe all" clears all."""
    if form.get("action") == "unsubscribe_all":
        return {category.value: False for category in ConsentCategory}
    return {category.value: form.get(category.value) == "on" for category in ConsentCategory}


_PAGE = Environment(autoescape=select_autoescape(default=True)).from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Email preferences</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:2rem auto;padding:0 1rem}
label{display:block;margin:.8rem 0}small{color:#555;display:block;margin-left:1.6rem}
button{margin:.6rem .6rem 0 0;padding:.5rem 1rem}.saved{background:#e7f6e7;padding:.6rem}</style>
</head><body>
<h1>Email preferences</h1>
<p>What you get from <strong>{{ shop }}</strong>. Order, shipping and account emails always
arrive.</p>
{% if saved %}<p class="saved" id="saved">{{ saved }}</p>{% endif %}
<form method="post" action="?token={{ token }}">
{% for category, (title, text) in labels %}
<label><input type="checkbox" name="{{ category }}" id="{{ category }}"
{% if current[category] %}checked{% endif %}> {{ title }}<small>{{ text }}</small></label>
{% endfor %}
<button type="submit" name="action" value="save" id="save">Save</button>
<button type="submit" name="action" value="unsubscribe_all" id="unsubscribe_all">Unsubscribe
from all marketing</button>
</form></body></html>
""")


def page(shop: str, current: dict[str, bool], token_text: str, saved: str = "") -> str:
    """The page (autoescaped: the shop's name is the shop's text)."""
    return _PAGE.render(shop=shop, current=current, token=quote(token_text), saved=saved,
                        labels=[(c.value, LABELS[c]) for c in ConsentCategory])
