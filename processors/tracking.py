"""Open and click tracking: signed ids in links and a pixel, and who fetched them.

A tracked email's HTML links become ``<base>/t/c/<link token>/<recipient token>`` and a
pixel ``<base>/t/o/<link token>/<recipient token>.gif`` is added. The *link token* signs
the target URL and the email's context (shop, type, priority, campaign, variant): it is the
same for every recipient of a campaign variant, so a batch render stays one render. The
*recipient token* signs the idempotency key, the recipient key and the domain, never the
address; batch APIs fill it in per recipient like the first name. Both are
``base64url(JSON).base64url(HMAC-SHA256[:16])`` with ``FLOWMAIL_TRACKING_SECRET`` (a list
rotates: the first signs, all verify). A click redirects only to the URL its token signed.

Unsubscribe and preference centre links are not rewritten (RFC 8058 one-click must reach its
own endpoint; a person's own links are not clicks to count), and security mail (password
resets) is never tracked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from core.catalogue import CATEGORY_OF, EmailType
from core.vocab import Category, DeliveryStatus
from processors.commands import DeliveryEvent
from processors.keys import recipient_domain, recipient_key

if TYPE_CHECKING:
    from processors.commands import EmailCommand
    from processors.rendering import RenderedEmail

_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)
_BODY_END = re.compile(r"</body>", re.IGNORECASE)
MAC_BYTES = 16


class TokenError(ValueError):
    """Not a token this deployment signed."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(hmac.digest(key, body.encode(), 'sha256')[:MAC_BYTES])}"


def verify(keys: list[bytes], token: str) -> dict[str, Any]:
    body, dot, mac = token.partition(".")
    if not dot or not body or len(token) > 4096:
        raise TokenError("not a token")
    try:
        given = _unb64(mac)
    except (binascii.Error, ValueError) as err:
        raise TokenError("signature is not base64url") from err
    authentic = False
    for key in keys:  # every key is tried: the time taken does not tell which one matched
        authentic |= hmac.compare_digest(
            given, hmac.new(key, body.encode(), hashlib.sha256).digest()[:MAC_BYTES])
    if not authentic:
        raise TokenError("signature does not match")
    try:
        payload = json.loads(_unb64(body))
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        raise TokenError("payload is not JSON") from err
    if not isinstance(payload, dict):
        raise TokenError("payload is not an object")
    return payload


@dataclass(frozen=True)
class Tracker:
    """What the senders need to make an email trackable."""

    keys: tuple[bytes, ...]       # signing key first, then older ones
    base_url: str                 # the public address of `flowmail webhooks`
    types: frozenset[EmailType]
    key_secret: bytes             # FLOWMAIL_PSEUDONYM_SECRET, for the recipient key

    @classmethod
    def of(cls, secret: str, base_url: str, types: str, key_secret: bytes) -> Tracker:
        chosen = frozenset(EmailType(t.strip()) for t in types.split(",") if t.strip())
        return cls(tuple(k.strip().encode() for k in secret.split(",") if k.strip()),
                   base_url.rstrip("/"), chosen, key_secret)

    def enabled(self, command: EmailCommand) -> bool:
        return (bool(self.keys) and command.email_type in self.types
                and CATEGORY_OF[command.email_type] is not Category.SECURITY)

    def recipient_token(self, command: EmailCommand) -> str:
        return sign(self.keys[0], {"k": command.idempotency_key,
                                   "r": recipient_key(command.recipient, self.key_secret),
                                   "d": recipient_domain(command.recipient)})

    def _context(self, command: EmailCommand) -> dict[str, str]:
        campaign, variant = command.campaign
        return {"s": command.shop_id, "t": command.email_type.value,
                "p": command.priority.value, "c": campaign, "v": variant}

    def apply(self, rendered: RenderedEmail, command: EmailCommand, recipient: str
              ) -> RenderedEmail:
        """``recipient``: the recipient token, or a placeholder a batch API fills in."""
        context = self._context(command)
        # the person's own links (unsubscribe, preferences) go where they say, untracked
        skip = {str(command.template_data.get(name) or "")
                for name in ("unsubscribe_url", "preferences_url")}
        tokens: dict[str, str] = {}

        def link(match: re.Match[str]) -> str:
            url = html.unescape(match.group(2))
            if url in skip or "/unsubscribe" in url or "/preferences/" in url:
                return match.group(0)
            if url not in tokens:
                tokens[url] = sign(self.keys[0], {**context, "u": url})
            return f"{match.group(1)}{self.base_url}/t/c/{tokens[url]}/{recipient}{match.group(3)}"

        body = _HREF.sub(link, rendered.html)
        pixel = (f'<img src="{self.base_url}/t/o/{sign(self.keys[0], context)}/{recipient}.gif"'
                 ' width="1" height="1" alt="" style="display:block;border:0">')
        ends = list(_BODY_END.finditer(body))
        if ends:
            at = ends[-1].start()
            body = body[:at] + pixel + body[at:]
        else:
            body += pixel
        return replace(rendered, html=body)


# Who fetched a tracking URL. Mail privacy proxies load every image when the message
# arrives, whether or not anyone reads it; link scanners follow every link before the
# recipient sees it. Both are counted, apart from people.
_PREFETCH = re.compile(r"^Mozilla/5\.0$|YahooMailProxy", re.IGNORECASE)
_SCANNER = re.compile(
    r"bot\b|crawler|spider|scanner|barracuda|proofpoint|mimecast|safelinks|"
    r"symantec|forcepoint|trendmicro|sophos|fortiguard|python-requests|curl/|wget/|"
    r"go-http-client|okhttp|headless", re.IGNORECASE)


def classify_agent(user_agent: str, method: str = "GET") -> str:
    """``human``, ``prefetch`` (privacy proxies: Apple Mail Privacy Protection's plain
    "Mozilla/5.0", Yahoo's) or ``scanner`` (security gateways, bots, HEAD requests, no
    user agent at all)."""
    agent = user_agent.strip()
    if method.upper() == "HEAD" or not agent or _SCANNER.search(agent):
        return "scanner"
    if _PREFETCH.search(agent):
        return "prefetch"
    return "human"


def tracking_event(status: DeliveryStatus, context: dict[str, Any], recipient: dict[str, Any],
                   agent: str, at_ms: int, nonce: str, url: str | None = None
                   ) -> DeliveryEvent:
    """One fetch of a pixel or a link (each is its own event: a second open is a second
    open; ``nonce`` tells two fetches in the same millisecond apart)."""
    key = str(recipient.get("k", ""))
    event_id = hashlib.sha256(f"{key}\x1f{status.value}\x1f{url or ''}\x1f{at_ms}\x1f{nonce}"
                              .encode()).hexdigest()[:40]
    return DeliveryEvent(
        event_id=event_id, status=status, idempotency_key=key, command_id="",
        email_type=str(context.get("t", "")), priority=str(context.get("p", "")), locale="",
        shop_id=str(context.get("s", "")), recipient_key=str(recipient.get("r", "")),
        recipient_domain=str(recipient.get("d", "")), attempt=0, source_event_id="",
        occurred_at=at_ms, provider="flowmail", campaign_id=str(context.get("c") or "") or None,
        variant=str(context.get("v") or "") or None, url=url, agent=agent)
