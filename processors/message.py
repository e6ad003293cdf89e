"""Rendered email -> RFC 5322 message with deterministic Message-ID and tracing headers."""

from __future__ import annotations

import datetime as dt
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from flowmail.vocab import RejectReason
from processors.commands import EmailCommand
from processors.errors import RejectedInput
from processors.rendering import RenderedEmail
from processors.validation import header_safe

IDEMPOTENCY_HEADER = "X-Flowmail-Idempotency-Key"


def _address(display_name: str, addr_spec: str) -> Address:
    try:
        return Address(display_name=display_name, addr_spec=addr_spec)
    except (ValueError, IndexError) as err:
        raise RejectedInput(RejectReason.INVALID_ADDRESS, f"cannot build address: {err}") from err


def build_message(command: EmailCommand, rendered: RenderedEmail, mail_from: str,
                  now: dt.datetime | None = None) -> EmailMessage:
    """The Message-ID derives from the idempotency key, so any duplicate is recognizable."""
    from_name, from_addr = parseaddr(mail_from)
    sender_domain = from_addr.rpartition("@")[2] or "flowmail.local"
    message = EmailMessage()
    message["From"] = _address(header_safe("mail_from", from_name), from_addr)
    message["To"] = _address(header_safe("recipient_name", command.recipient_name),
                             command.recipient)
    message["Subject"] = header_safe("subject", rendered.subject)
    message["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    message["Message-ID"] = f"<{command.idempotency_key}@{sender_domain}>"
    message[IDEMPOTENCY_HEADER] = command.idempotency_key
    message["X-Flowmail-Email-Type"] = command.email_type.value
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    for attachment in rendered.attachments:
        maintype, subtype = attachment.mime_type.split("/")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype,
                               filename=attachment.filename)
    # last: set_content and add_attachment move Content-* headers into the parts
    message["Content-Language"] = command.locale.replace("_", "-")
    unsubscribe = command.template_data.get("unsubscribe_url")
    if unsubscribe:  # RFC 2369 + RFC 8058 one-click: mailbox providers show an unsubscribe button
        message["List-Unsubscribe"] = f"<{header_safe('unsubscribe_url', unsubscribe)}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message
