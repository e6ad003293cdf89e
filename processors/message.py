"""Rendered email -> the email a provider sends: fields for JSON APIs, RFC 5322 bytes for SMTP
and raw-MIME APIs (serialized once), a Message-ID derived from the idempotency key."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from email.utils import format_datetime, parseaddr
from functools import cached_property, lru_cache

from processors.commands import EmailCommand
from processors.feedback import echo_fields
from processors.mime import address_header, message_bytes, text_header
from processors.rendering import Attachment, RenderedEmail
from processors.validation import header_safe

IDEMPOTENCY_HEADER = "X-Flowmail-Idempotency-Key"


@dataclass(frozen=True)
class OutgoingEmail:
    sender: tuple[str, str]  # (address, display name)
    recipient: tuple[str, str]
    subject: str
    date: str
    text: str
    html: str
    attachments: tuple[Attachment, ...] = ()
    # Message-ID, tracing, language and unsubscribe headers, in the order they are written
    headers: dict[str, str] = field(default_factory=dict)
    # returned by the provider with each webhook event (processors/feedback.py); not headers
    echo: dict[str, str] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        return self.headers["Message-ID"]

    @property
    def idempotency_key(self) -> str:
        return self.headers[IDEMPOTENCY_HEADER]

    @cached_property
    def raw(self) -> bytes:
        lines = [address_header("From", self.sender[1], self.sender[0]),
                 address_header("To", self.recipient[1], self.recipient[0]),
                 text_header("Subject", self.subject), f"Date: {self.date}",
                 *(text_header(name, value) for name, value in self.headers.items())]
        return message_bytes(lines, self.text, self.html,
                             [(a.filename, a.mime_type, a.content) for a in self.attachments],
                             self.idempotency_key)

    def as_bytes(self) -> bytes:
        return self.raw


def _date_now() -> str:
    """The Date header of this second: formatted once a second, not once an email (2.5 % of
    a worker's CPU in the mix's profile)."""
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache[:] = [second, format_datetime(dt.datetime.fromtimestamp(second, dt.UTC))]
    return _date_cache[1]


_date_cache: list = [0, ""]


@lru_cache(maxsize=64)
def _sender(mail_from: str) -> tuple[str, str, str]:
    """(display name, address, domain) of the From setting: parsed once, not per email
    (email.utils.parseaddr was a sixth of building a message, profiled)."""
    from_name, from_addr = parseaddr(mail_from)
    return from_name, from_addr, from_addr.rpartition("@")[2] or "flowmail.local"


def build_message(command: EmailCommand, rendered: RenderedEmail, mail_from: str,
                  now: dt.datetime | None = None) -> OutgoingEmail:
    """The Message-ID derives from the idempotency key, so any duplicate is recognizable."""
    from_name, from_addr, sender_domain = _sender(mail_from)
    headers = {"Message-ID": f"<{command.idempotency_key}@{sender_domain}>",
               IDEMPOTENCY_HEADER: command.idempotency_key,
               "X-Flowmail-Email-Type": command.email_type.value,
               "Content-Language": command.locale.replace("_", "-")}
    unsubscribe = command.template_data.get("unsubscribe_url")
    if unsubscribe:  # RFC 2369 + RFC 8058 one-click: mailbox providers show an unsubscribe button
        headers["List-Unsubscribe"] = f"<{header_safe('unsubscribe_url', unsubscribe)}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return OutgoingEmail(
        sender=(from_addr, header_safe("mail_from", from_name)),
        recipient=(command.recipient, header_safe("recipient_name", command.recipient_name)),
        subject=header_safe("subject", rendered.subject),
        date=format_datetime(now) if now else _date_now(),
        text=rendered.text, html=rendered.html, attachments=rendered.attachments,
        headers=headers, echo=echo_fields(command))
