"""What providers tell flowmail after a send (delivered, bounced, complained, opened, clicked,
unsubscribed, deferred), read from each provider's documented webhook shape and turned into
delivery events and suppressions.

A batch call has one provider message id for many recipients, so flowmail gives each
recipient's message its own *echo fields* (idempotency key, shop, type, priority, campaign,
variant), which the providers return with every event: SendGrid ``custom_args``, Mailgun
``v:`` variables, SES message tags. No lookup table is needed to map an event back.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from core.vocab import DeliveryStatus, SuppressionReason
from processors.commands import DeliveryEvent, EmailCommand
from processors.keys import recipient_domain, recipient_key, without_addresses
from processors.suppression import change, scope_for, soft_bounce

ECHO_PREFIX = "flowmail_"
ECHO_NAMES = ("key", "shop", "type", "priority", "campaign", "variant")
FEEDBACK_ATTEMPT = 0  # a delivery event from a provider's feedback, not from a send attempt


class FeedbackError(ValueError):
    """A verified request whose content flowmail cannot read (a 400: the provider stops)."""


def echo_fields(command: EmailCommand) -> dict[str, str]:
    """What each provider is asked to return with every event of this email."""
    campaign, variant = command.campaign
    return {f"{ECHO_PREFIX}key": command.idempotency_key,
            f"{ECHO_PREFIX}shop": command.shop_id,
            f"{ECHO_PREFIX}type": command.email_type.value,
            f"{ECHO_PREFIX}priority": command.priority.value,
            f"{ECHO_PREFIX}campaign": campaign, f"{ECHO_PREFIX}variant": variant}


_TAG_SAFE = re.compile(r"[A-Za-z0-9_-]{0,256}")
_ENCODED = "b64_"


def ses_tag_value(value: str) -> str:
    """SES tag values allow only ``[A-Za-z0-9_-]``: anything else travels base64url-coded."""
    if _TAG_SAFE.fullmatch(value) and not value.startswith(_ENCODED):
        return value
    return _ENCODED + base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def from_ses_tag_value(value: str) -> str:
    if not value.startswith(_ENCODED):
        return value
    raw = value[len(_ENCODED):]
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


@dataclass(frozen=True)
class ProviderEvent:
    provider: str
    status: DeliveryStatus
    event_ref: str           # the provider's own id of this event (retries repeat it)
    recipient: str
    occurred_at: int         # ms since the epoch
    echo: dict[str, str]
    provider_message_id: str | None = None
    reason: str | None = None
    bounce_type: str | None = None  # "hard" or "soft"
    url: str | None = None

    @property
    def idempotency_key(self) -> str:
        return self.echo.get(f"{ECHO_PREFIX}key", "")

    @property
    def shop_id(self) -> str:
        return self.echo.get(f"{ECHO_PREFIX}shop", "")


def _echo(values: Any) -> dict[str, str]:
    if not isinstance(values, dict):
        return {}
    return {k: str(v) for k, v in values.items()
            if isinstance(k, str) and k.startswith(ECHO_PREFIX) and v is not None}


def _millis(seconds: Any) -> int:
    try:
        return int(float(seconds) * 1000)
    except (TypeError, ValueError) as err:
        raise FeedbackError(f"timestamp {seconds!r} is not a number") from err


def _iso_millis(text: Any) -> int:
    try:
        return int(dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
                   * 1000)
    except ValueError as err:
        raise FeedbackError(f"timestamp {text!r} is not ISO 8601") from err


# SendGrid Event Webhook: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events
_SENDGRID_STATUS = {"delivered": DeliveryStatus.DELIVERED, "deferred": DeliveryStatus.DEFERRED,
                    "bounce": DeliveryStatus.BOUNCED, "dropped": DeliveryStatus.FAILED,
                    "open": DeliveryStatus.OPENED, "click": DeliveryStatus.CLICKED,
                    "spamreport": DeliveryStatus.COMPLAINED,
                    "unsubscribe": DeliveryStatus.UNSUBSCRIBED,
                    "group_unsubscribe": DeliveryStatus.UNSUBSCRIBED}


def sendgrid_events(body: Any) -> list[ProviderEvent]:
    """A POST holds a JSON array of events; ``processed`` and the like are not outcomes."""
    if not isinstance(body, list):
        raise FeedbackError("SendGrid posts a JSON array of events")
    events = []
    for item in body:
        if not isinstance(item, dict):
            raise FeedbackError("an event is not a JSON object")
        status = _SENDGRID_STATUS.get(str(item.get("event")))
        if status is None:
            continue
        bounce_type = None
        if status is DeliveryStatus.BOUNCED:  # "blocked": the receiver refused for now
            bounce_type = "soft" if item.get("type") == "blocked" else "hard"
        events.append(ProviderEvent(
            provider="sendgrid", status=status,
            event_ref=str(item.get("sg_event_id") or ""), recipient=str(item.get("email") or ""),
            occurred_at=_millis(item.get("timestamp")), echo=_echo(item),
            provider_message_id=str(item.get("sg_message_id") or "") or None,
            reason=_reason(item.get("reason"), item.get("status")), bounce_type=bounce_type,
            url=str(item["url"]) if status is DeliveryStatus.CLICKED and item.get("url")
            else None))
    return events


# Mailgun webhooks: https://documentation.mailgun.com/docs/mailgun/user-manual/events/webhooks
_MAILGUN_STATUS = {"delivered": DeliveryStatus.DELIVERED, "opened": DeliveryStatus.OPENED,
                   "clicked": DeliveryStatus.CLICKED, "complained": DeliveryStatus.COMPLAINED,
                   "unsubscribed": DeliveryStatus.UNSUBSCRIBED}


def mailgun_events(body: Any) -> list[ProviderEvent]:
    if not isinstance(body, dict) or not isinstance(body.get("event-data"), dict):
        raise FeedbackError("Mailgun posts {signature, event-data}")
    data = body["event-data"]
    kind = str(data.get("event"))
    bounce_type = None
    if kind == "failed":
        permanent = data.get("severity") == "permanent"
        status = DeliveryStatus.BOUNCED if permanent else DeliveryStatus.DEFERRED
        bounce_type = "hard" if permanent else None
    elif kind in _MAILGUN_STATUS:
        status = _MAILGUN_STATUS[kind]
    else:
        return []
    delivery = data.get("delivery-status") if isinstance(data.get("delivery-status"), dict) \
        else {}
    message = data.get("message") if isinstance(data.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    return [ProviderEvent(
        provider="mailgun", status=status, event_ref=str(data.get("id") or ""),
        recipient=str(data.get("recipient") or ""), occurred_at=_millis(data.get("timestamp")),
        echo=_echo(data.get("user-variables")),
        provider_message_id=str(headers.get("message-id") or "") or None,
        reason=_reason(delivery.get("description") or delivery.get("message"),
                       delivery.get("code")),
        bounce_type=bounce_type,
        url=str(data["url"]) if status is DeliveryStatus.CLICKED and data.get("url") else None)]


def ses_events(notification: Any, sns_message_id: str) -> list[ProviderEvent]:
    """An SES event (configuration-set event publishing, ``eventType``) or a classic
    notification (``notificationType``), as the SNS message's ``Message``."""
    if not isinstance(notification, dict) or not isinstance(notification.get("mail"), dict):
        raise FeedbackError("an SES notification has eventType/notificationType and mail")
    kind = str(notification.get("eventType") or notification.get("notificationType") or "")
    mail = notification["mail"]
    echo = _ses_echo(mail)
    message_id = str(mail.get("messageId") or "") or None
    destination = [str(d) for d in mail.get("destination") or []]

    def event(status: DeliveryStatus, recipient: str, at: Any, index: int, **extra: Any
              ) -> ProviderEvent:
        return ProviderEvent(provider="ses", status=status,
                             event_ref=f"{sns_message_id}/{index}", recipient=recipient,
                             occurred_at=_iso_millis(at), echo=echo,
                             provider_message_id=message_id, **extra)

    detail = notification.get(kind[:1].lower() + kind[1:]) or {}
    if not isinstance(detail, dict):
        raise FeedbackError(f"SES {kind} detail is not an object")
    at = detail.get("timestamp") or mail.get("timestamp")
    if kind == "Bounce":
        hard = detail.get("bounceType") == "Permanent"
        return [event(DeliveryStatus.BOUNCED, str(r.get("emailAddress") or ""), at, i,
                      bounce_type="hard" if hard else "soft",
                      reason=_reason(r.get("diagnosticCode"), r.get("status")))
                for i, r in enumerate(detail.get("bouncedRecipients") or [])]
    if kind == "Complaint":
        return [event(DeliveryStatus.COMPLAINED, str(r.get("emailAddress") or ""), at, i,
                      reason=detail.get("complaintFeedbackType"))
                for i, r in enumerate(detail.get("complainedRecipients") or [])]
    if kind == "Delivery":
        return [event(DeliveryStatus.DELIVERED, str(r), at, i)
                for i, r in enumerate(detail.get("recipients") or destination)]
    if kind == "DeliveryDelay":
        return [event(DeliveryStatus.DEFERRED, str(r.get("emailAddress") or ""), at, i,
                      reason=_reason(r.get("diagnosticCode"), r.get("status")))
                for i, r in enumerate(detail.get("delayedRecipients") or [])]
    if kind in {"Open", "Click"}:
        status = DeliveryStatus.OPENED if kind == "Open" else DeliveryStatus.CLICKED
        url = str(detail.get("link")) if kind == "Click" and detail.get("link") else None
        return [event(status, r, at, i, url=url) for i, r in enumerate(destination)]
    if kind == "Subscription":
        return [event(DeliveryStatus.UNSUBSCRIBED, r, at, i) for i, r in enumerate(destination)]
    return []


def _ses_echo(mail: dict[str, Any]) -> dict[str, str]:
    tags = mail.get("tags")
    if isinstance(tags, dict):
        found = {k: from_ses_tag_value(str(v[0] if isinstance(v, list) and v else v))
                 for k, v in tags.items() if isinstance(k, str) and k.startswith(ECHO_PREFIX)}
        if found:
            return found
    for header in mail.get("headers") or []:  # classic notifications with original headers
        if isinstance(header, dict) and header.get("name") == "X-Flowmail-Idempotency-Key":
            return {f"{ECHO_PREFIX}key": str(header.get("value") or "")}
    return {}


def _reason(*parts: Any) -> str | None:
    text = without_addresses(" ".join(str(p) for p in parts if p not in (None, ""))) or ""
    return text[:500] or None


_ENHANCED = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_NO_SUCH_USER = re.compile(r"no such (user|mailbox|recipient)|user unknown|unknown (user|recipient)"
                           r"|mailbox (not found|does not exist)|address does not exist", re.I)
_GONE = {(1, 1), (1, 2), (1, 10)}  # bad mailbox, bad domain, null MX (RFC 3463, RFC 7505)


def no_such_user(code: int, text: str) -> bool:
    """An SMTP refusal at send time that is a hard bounce: the address does not exist. With
    an enhanced status code (RFC 3463) only 5.1.1, 5.1.2 and 5.1.10 are; a policy refusal
    (5.7.x: spam, reputation) is not the address's fault and never suppresses it."""
    if not 500 <= code < 600:
        return False
    enhanced = _ENHANCED.search(text)
    if enhanced:
        return enhanced.group(1) == "5" and (int(enhanced.group(2)),
                                             int(enhanced.group(3))) in _GONE
    return code in {550, 551, 553} and bool(_NO_SUCH_USER.search(text))


def feedback_event_id(event: ProviderEvent) -> str:
    """The same provider event (a webhook retried, or sent to two replicas) has one id."""
    material = "\x1f".join((event.provider, event.event_ref, event.status.value,
                            event.idempotency_key, event.recipient.lower(), event.url or ""))
    return hashlib.sha256(material.encode()).hexdigest()[:40]


def to_delivery_event(event: ProviderEvent, key_secret: bytes) -> DeliveryEvent:
    echo = event.echo
    return DeliveryEvent(
        event_id=feedback_event_id(event), status=event.status,
        idempotency_key=event.idempotency_key, command_id="",
        email_type=echo.get(f"{ECHO_PREFIX}type", ""),
        priority=echo.get(f"{ECHO_PREFIX}priority", ""), locale="", shop_id=event.shop_id,
        recipient_key=recipient_key(event.recipient, key_secret),
        recipient_domain=recipient_domain(event.recipient), attempt=FEEDBACK_ATTEMPT,
        source_event_id="", occurred_at=event.occurred_at, provider=event.provider,
        provider_message_id=event.provider_message_id, reason=event.reason,
        campaign_id=echo.get(f"{ECHO_PREFIX}campaign") or None,
        variant=echo.get(f"{ECHO_PREFIX}variant") or None, bounce_type=event.bounce_type,
        url=event.url)


def suppression_of(event: ProviderEvent) -> SuppressionReason | None:
    """Hard bounces and complaints stop all but security mail (every shop); an unsubscribe
    reported by the provider stops that shop's marketing."""
    if event.status is DeliveryStatus.BOUNCED and event.bounce_type == "hard":
        return SuppressionReason.HARD_BOUNCE
    if event.status is DeliveryStatus.COMPLAINED:
        return SuppressionReason.COMPLAINT
    if event.status is DeliveryStatus.UNSUBSCRIBED and event.shop_id:
        return SuppressionReason.UNSUBSCRIBE
    return None


def suppression_change(event: ProviderEvent) -> dict[str, Any] | None:
    """The email.suppressions change this event makes: a scope, or one soft bounce counted
    (processors/suppression.py decides when they add up)."""
    source = f"webhook:{event.provider}"
    if event.status is DeliveryStatus.BOUNCED and event.bounce_type == "soft":
        return soft_bounce(event.occurred_at, source)
    reason = suppression_of(event)
    if reason is None:
        return None
    return change(reason, scope_for(reason, event.shop_id or None), event.occurred_at, source)
