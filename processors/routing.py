"""Domain event -> email commands. One pure function per topic; ``route`` dispatches.

Profiles (from user.created) fill in what later events lack; the caller passes a lookup so
these functions stay pure.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from core.catalogue import PRIORITY_OF, EmailType
from core.vocab import ConsentCategory, RejectReason
from processors.campaign_runs import validate_plan
from processors.campaigns import (
    audience,
    category_of,
    choose_variant,
    unsubscribe_link,
    unsubscribe_token,
)
from processors.commands import EmailCommand
from processors.errors import RejectedInput
from processors.keys import idempotency_key, recipient_key
from processors.locales import negotiate
from processors.preferences import Links as PreferenceLinks
from processors.preferences import link as preference_link
from processors.profiles import Profile
from processors.validation import deliverable_address, header_safe, https_url, required_text

Event = dict[str, Any]
ProfileLookup = Callable[[str, str], Profile | None]  # (shop id, user id) -> profile
Router = Callable[[Event, str, int, int, ProfileLookup], list[EmailCommand]]
VariantPick = Callable[[Profile], dict[str, Any] | None]  # a profile's variant in a pass

def no_profiles(_shop_id: str, _user_id: str) -> Profile | None:
    return None


def make_command(email_type: EmailType, event: Event, topic: str, recipient: str, name: str,
                 locale: str, data: dict[str, Any], shop_id: str, published_at: int,
                 now: int) -> EmailCommand:
    """Validate the header-bound values and build the command with its idempotency key."""
    address = deliverable_address("recipient", recipient)
    header_safe("recipient name", name, max_len=200)
    return EmailCommand(
        command_id=str(uuid.uuid4()),
        idempotency_key=idempotency_key(event["event_id"], email_type.value, address),
        email_type=email_type, priority=PRIORITY_OF[email_type], recipient=address,
        recipient_name=name, locale=locale, template_data=data, shop_id=shop_id,
        source_event_id=event["event_id"], source_topic=topic,
        event_published_at=published_at, created_at=now)


def _common(event: Event) -> None:
    required_text("event_id", event["event_id"])
    shop = event["shop"]
    header_safe("shop.name", required_text("shop.name", shop["name"]), max_len=200)
    deliverable_address("shop.support_email", shop["support_email"])


def _person(person: dict[str, Any]) -> str:
    return f"{person['first_name']} {person['last_name']}".strip()


def _amounts(*values: int) -> None:
    if min(values) < 0:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "amounts must not be negative")


def route_user_created(event: Event, topic: str, published_at: int, now: int,
                       profiles: ProfileLookup) -> list[EmailCommand]:
    _common(event)
    user = event["user"]
    data = {"shop": event["shop"], "user": user,
            "activation_url": https_url("activation_url", event["activation_url"])}
    return [make_command(EmailType.WELCOME, event, topic, user["email"], _person(user),
                         negotiate(user.get("locale"), user.get("country")), data,
                         event["shop"]["shop_id"], published_at, now)]


def route_password_reset(event: Event, topic: str, published_at: int, now: int,
                         profiles: ProfileLookup) -> list[EmailCommand]:
    _common(event)
    user, expires_at = event["user"], _millis(event["expires_at"])
    if expires_at <= now:
        raise RejectedInput(RejectReason.EXPIRED, "reset link expired before it could be sent")
    data = {"shop": event["shop"], "user": user, "expires_at": expires_at,
            "reset_url": https_url("reset_url", event["reset_url"]),
            "request_ip": event.get("request_ip")}
    return [make_command(EmailType.PASSWORD_RESET, event, topic, user["email"], _person(user),
                         negotiate(user.get("locale"), user.get("country")), data,
                         event["shop"]["shop_id"], published_at, now)]


def route_order_placed(event: Event, topic: str, published_at: int, now: int,
                       profiles: ProfileLookup) -> list[EmailCommand]:
    _common(event)
    customer, address = event["customer"], event["shipping_address"]
    required_text("order_id", event["order_id"])
    if not event["items"]:
        raise RejectedInput(RejectReason.MISSING_FIELD, "items is empty")
    for index, item in enumerate(event["items"]):
        if item["quantity"] < 1 or item["unit_price_minor"] < 0:
            raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                                f"items[{index}] needs quantity >= 1 and a price >= 0")
    _amounts(event["subtotal_minor"], event["tax_minor"], event["shipping_minor"],
             event["total_minor"])
    locale = negotiate(customer.get("locale"), address.get("country"))
    data = {key: event.get(key) for key in (
        "order_id", "shop", "customer", "items", "currency", "subtotal_minor", "tax_minor",
        "shipping_minor", "total_minor", "shipping_address", "estimated_delivery")}
    data["tracking_url"] = https_url("tracking_url", event.get("tracking_url"), optional=True)
    return [make_command(EmailType.ORDER_CONFIRMATION, event, topic, customer["email"],
                         _person(customer), locale, data, event["shop"]["shop_id"],
                         published_at, now)]


def route_shipment_updated(event: Event, topic: str, published_at: int, now: int,
                           profiles: ProfileLookup) -> list[EmailCommand]:
    _common(event)
    profile = profiles(event["shop"]["shop_id"], event["user_id"]) or {}
    recipient = event.get("email") or profile.get("email")
    if not recipient:
        raise RejectedInput(RejectReason.MISSING_FIELD,
                            "email is empty and no profile is known for user_id")
    data = {"shop": event["shop"], "order_id": event["order_id"],
            "shipment_id": event["shipment_id"], "status": event["status"],
            "carrier": event["carrier"], "first_name": profile.get("first_name", ""),
            "tracking_url": https_url("tracking_url", event.get("tracking_url"), optional=True),
            "history": [{"status": s["status"], "at": _millis(s["at"]),
                         "location": s.get("location")} for s in event.get("history") or []]}
    name = _person(profile) if profile else ""
    return [make_command(EmailType.SHIPPING_UPDATE, event, topic, recipient, name,
                         negotiate(profile.get("locale"), profile.get("country")), data,
                         event["shop"]["shop_id"], published_at, now)]


def route_invoice_issued(event: Event, topic: str, published_at: int, now: int,
                         profiles: ProfileLookup) -> list[EmailCommand]:
    _common(event)
    customer = event["customer"]
    required_text("invoice_id", event["invoice_id"])
    if not event["lines"]:
        raise RejectedInput(RejectReason.MISSING_FIELD, "lines is empty")
    for index, line in enumerate(event["lines"]):
        if line["quantity"] < 1 or line["unit_price_minor"] < 0 or line["tax_rate_bp"] < 0:
            raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                                f"lines[{index}] needs quantity >= 1, price and tax rate >= 0")
    _amounts(event["net_minor"], event["tax_minor"], event["total_minor"])
    data = {key: event.get(key) for key in (
        "invoice_id", "order_id", "shop", "customer", "currency", "lines", "net_minor",
        "tax_minor", "total_minor", "due_date")}
    return [make_command(EmailType.INVOICE, event, topic, customer["email"], _person(customer),
                         negotiate(customer.get("locale"), customer.get("country")), data,
                         event["shop"]["shop_id"], published_at, now)]


def route_support_replied(event: Event, topic: str, published_at: int, now: int,
                          profiles: ProfileLookup) -> list[EmailCommand]:
    _common(event)
    customer = event["customer"]
    required_text("reply_text", event["reply_text"])
    header_safe("subject", event["subject"], max_len=300)
    data = {key: event.get(key) for key in (
        "ticket_id", "subject", "customer", "shop", "agent_name", "reply_text",
        "customer_message")}
    data["ticket_url"] = https_url("ticket_url", event.get("ticket_url"), optional=True)
    return [make_command(EmailType.SUPPORT_RESPONSE, event, topic, customer["email"],
                         _person(customer), negotiate(customer.get("locale"),
                                                      customer.get("country")),
                         data, event["shop"]["shop_id"], published_at, now)]


def validate_campaign(event: Event) -> None:
    """Checked once at launch, so a bad campaign is one dead letter, not one per recipient."""
    _common(event)
    if not event["variants"]:
        raise RejectedInput(RejectReason.MISSING_FIELD, "variants is empty")
    for variant in event["variants"]:
        header_safe(f"variants[{variant['variant_id']}].subject", variant["subject"], 300)
        https_url(f"variants[{variant['variant_id']}].cta_url", variant["cta_url"])
        if variant["weight"] <= 0:
            raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "variant weights must be positive")
    validate_plan(event)
    if category_of(event) not in set(ConsentCategory):
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            f"category must be one of {', '.join(ConsentCategory)}")
    if not (event["shop"].get("postal_address") or "").strip():
        raise RejectedInput(RejectReason.MISSING_POSTAL_ADDRESS,
                            "CAN-SPAM: marketing email must show the sender's postal address; "
                            "shop.postal_address is empty")
    https_url("unsubscribe_base_url", event["unsubscribe_base_url"])
    https_url("preferences_url", event["preferences_url"])


def fan_out_campaign(event: Event, topic: str, profiles: Iterable[Profile], published_at: int,
                     now: int, unsubscribe_secret: bytes, pseudonym_secret: bytes = b"",
                     pick: VariantPick | None = None,
                     preferences: PreferenceLinks | None = None
                     ) -> tuple[list[EmailCommand], int]:
    """Commands for every matching profile, and how many profiles were rejected.

    ``pick``: the variant a matching profile gets in this pass, or None to leave it out (an
    A/B test's phases, processors/campaign_runs.py); by default every profile gets one by
    weight. The unsubscribe token names the recipient key (as the suppression table does),
    never the address, so the link itself carries no personal data. ``preferences``: how to
    make each person's signed preference centre link (else the launch's ``preferences_url``);
    its parts travel too, for batch APIs that fill the token in per recipient.
    """
    commands, rejected = [], 0
    shop_id = event["shop"]["shop_id"]
    for profile in audience(shop_id, event["segment"], profiles, category_of(event)):
        variant = (pick(profile) if pick is not None else
                   choose_variant(event["campaign_id"], profile["user_id"], event["variants"]))
        if variant is None:
            continue
        token = unsubscribe_token(unsubscribe_secret,
                                  recipient_key(profile["email"], pseudonym_secret), shop_id)
        data = {"shop": event["shop"], "campaign_id": event["campaign_id"],
                "variant": variant, "first_name": profile["first_name"],
                "unsubscribe_url": unsubscribe_link(event["unsubscribe_base_url"], token),
                # the parts, for providers that fill the token in per recipient
                "unsubscribe_base_url": event["unsubscribe_base_url"],
                "unsubscribe_token": token,
                "preferences_url": event["preferences_url"]}
        if preferences is not None:
            own = preferences.token_for(profile)
            data.update(preferences_url=preference_link(preferences.base_url, own),
                        preferences_base_url=preferences.base_url, preferences_token=own)
        try:
            commands.append(make_command(
                EmailType.MARKETING_CAMPAIGN, event, topic, profile["email"], _person(profile),
                negotiate(profile.get("locale"), profile.get("country")), data, shop_id,
                published_at, now))
        except RejectedInput:
            rejected += 1  # a bad stored address must not stop the other recipients
    return commands, rejected


def route_campaign_launched(event: Event, topic: str, published_at: int, now: int,
                            profiles: ProfileLookup) -> list[EmailCommand]:
    """Validation only: the fan-out runs per partition over the profiles table."""
    validate_campaign(event)
    return []


OPERATOR_LOCALE = "en"  # flowmail's own mail to its operators


def _operators(event: Event) -> list[str]:
    addresses = list(dict.fromkeys(deliverable_address("operators[]", address)
                                   for address in event["operators"]))
    if not addresses:
        raise RejectedInput(RejectReason.MISSING_FIELD, "operators: nobody to tell")
    return addresses


def route_operator_alert(event: Event, topic: str, published_at: int, now: int,
                         profiles: ProfileLookup) -> list[EmailCommand]:
    """An anomaly raised or cleared, to each operator (critical: it may need a hand now)."""
    _common(event)
    header_safe("summary", required_text("summary", event["summary"]), max_len=500)
    data = {key: event[key] for key in ("alert_id", "rule", "dimension", "key", "state",
                                        "rate", "threshold", "sample", "summary", "shop")}
    return [make_command(EmailType.OPERATOR_ALERT, event, topic, address, "", OPERATOR_LOCALE,
                         data, event["shop"]["shop_id"], published_at, now)
            for address in _operators(event)]


def route_daily_report(event: Event, topic: str, published_at: int, now: int,
                       profiles: ProfileLookup) -> list[EmailCommand]:
    """The day's report, to each operator; its PDF is made when the email is rendered."""
    _common(event)
    try:
        figures = json.loads(event["figures_json"])
    except ValueError as err:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, f"figures_json: {err}") from err
    if not isinstance(figures, dict) or figures.get("date") != event["report_date"]:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            "figures_json must be the report of report_date")
    data = {"report_date": event["report_date"], "figures": figures, "shop": event["shop"]}
    return [make_command(EmailType.DAILY_REPORT, event, topic, address, "", OPERATOR_LOCALE,
                         data, event["shop"]["shop_id"], published_at, now)
            for address in _operators(event)]


ROUTES: dict[str, Router] = {
    "user.created": route_user_created,
    "user.password_reset_requested": route_password_reset,
    "order.placed": route_order_placed,
    "shipment.updated": route_shipment_updated,
    "invoice.issued": route_invoice_issued,
    "support.replied": route_support_replied,
    "campaign.launched": route_campaign_launched,
    "ops.alert": route_operator_alert,
    "ops.daily_report": route_daily_report,
}


def route(topic: str, event: Event, published_at: int, now: int,
          profiles: ProfileLookup = no_profiles) -> list[EmailCommand]:
    """All commands an event causes; raises ``RejectedInput`` for events to dead-letter."""
    router = ROUTES.get(topic)
    if router is None:
        raise RejectedInput(RejectReason.UNSUPPORTED_TOPIC, f"no route for topic {topic!r}")
    return router(event, topic, published_at, now, profiles)


def _millis(value: Any) -> int:
    return value if isinstance(value, int) else int(value.timestamp() * 1000)
