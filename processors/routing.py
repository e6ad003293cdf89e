"""Domain event -> email commands. One pure function per topic; ``route`` dispatches."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flowmail.vocab import EmailType, Priority, RejectReason
from processors.commands import EmailCommand
from processors.errors import RejectedInput
from processors.keys import idempotency_key
from processors.locales import negotiate
from processors.validation import deliverable_address, header_safe, required_text

Event = dict[str, Any]
Router = Callable[[Event, str, int, int], list[EmailCommand]]

PRIORITY_OF: dict[EmailType, Priority] = {
    EmailType.WELCOME: Priority.CRITICAL,
    EmailType.PASSWORD_RESET: Priority.CRITICAL,
    EmailType.ORDER_CONFIRMATION: Priority.TRANSACTIONAL,
    EmailType.SHIPPING_UPDATE: Priority.TRANSACTIONAL,
    EmailType.INVOICE: Priority.TRANSACTIONAL,
    EmailType.SUPPORT_RESPONSE: Priority.TRANSACTIONAL,
    EmailType.MARKETING_CAMPAIGN: Priority.MARKETING,
}


def make_command(email_type: EmailType, event: Event, topic: str, recipient: str, name: str,
                 locale: str, data: dict[str, Any], shop_id: str, published_at: int,
                 now: int) -> EmailCommand:
    """Validate the header-bound values and build the command with its idempotency key."""
    address = deliverable_address("recipient", recipient)
    header_safe("recipient_name", name, max_len=200)
    return EmailCommand(
        command_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key(event["event_id"], email_type.value, address),
        email_type=email_type, priority=PRIORITY_OF[email_type], recipient=address,
        recipient_name=name, locale=locale, template_data=data, shop_id=shop_id,
        source_event_id=event["event_id"], source_topic=topic,
        event_published_at=published_at, created_at=now)


def route_order_placed(event: Event, topic: str, published_at: int, now: int) -> list[EmailCommand]:
    customer, shop, address = event["customer"], event["shop"], event["shipping_address"]
    required_text("event_id", event["event_id"])
    required_text("order_id", event["order_id"])
    if not event["items"]:
        raise RejectedInput(RejectReason.MISSING_FIELD, "items is empty")
    for index, item in enumerate(event["items"]):
        if item["quantity"] < 1 or item["unit_price_minor"] < 0:
            raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                                f"items[{index}] needs quantity >= 1 and a price >= 0")
    if min(event["subtotal_minor"], event["tax_minor"], event["shipping_minor"],
           event["total_minor"]) < 0:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "amounts must not be negative")
    header_safe("shop.name", required_text("shop.name", shop["name"]), max_len=200)
    name = f"{customer['first_name']} {customer['last_name']}".strip()
    locale = negotiate(customer.get("locale"), address.get("country"))
    data = {
        "order_id": event["order_id"], "shop": shop, "customer": customer,
        "items": event["items"], "currency": event["currency"],
        "subtotal_minor": event["subtotal_minor"], "tax_minor": event["tax_minor"],
        "shipping_minor": event["shipping_minor"], "total_minor": event["total_minor"],
        "shipping_address": address, "tracking_url": event.get("tracking_url"),
        "estimated_delivery": event.get("estimated_delivery"),
    }
    return [make_command(EmailType.ORDER_CONFIRMATION, event, topic, customer["email"], name,
                         locale, data, shop["shop_id"], published_at, now)]


ROUTES: dict[str, Router] = {
    "order.placed": route_order_placed,
}


def route(topic: str, event: Event, published_at: int, now: int) -> list[EmailCommand]:
    """All commands an event causes; raises ``RejectedInput`` for events to dead-letter."""
    router = ROUTES.get(topic)
    if router is None:
        raise RejectedInput(RejectReason.UNSUPPORTED_TOPIC, f"no route for topic {topic!r}")
    return router(event, topic, published_at, now)
