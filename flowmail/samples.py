"""Realistic sample domain events for the demo, the tests and the benchmark."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from core.avro import file_schemas
from core.catalogue import BY_TOPIC, CATALOGUE, DomainEvent
from flowmail.publisher import from_json

# (first, last, locale preference, country, currency, city, postal code)
CUSTOMERS = [
    ("Emily", "Carter", "en-US", "US", "USD", "Portland", "97205"),
    ("Lena", "Schmidt", "de-DE", "DE", "EUR", "Köln", "50968"),
    ("Camille", "Durand", None, "FR", "EUR", "Lyon", "69002"),
    ("Lucía", "García", "es", "ES", "EUR", "Sevilla", "41001"),
    ("Giulia", "Rossi", None, "IT", "EUR", "Torino", "10121"),
    ("João", "Silva", "pt-BR", "BR", "BRL", "São Paulo", "01310-100"),
    ("Haruto", "Sato", "ja-JP", "JP", "JPY", "東京都", "100-0001"),
    ("Wei", "Zhang", "zh-Hans-CN", "CN", "CNY", "上海", "200000"),
]
PRODUCTS = [("TENT-2P", "Trekking tent, 2 persons", 24999),
            ("MAT-UL", "Ultralight sleeping mat", 5990), ("BAG-35", "Daypack 35 l", 8950),
            ("LAMP-H", "Head lamp", 2999), ("SOCK-M", "Merino socks", 1599)]


def order_placed(index: int, rng: random.Random | None = None,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """Order ``index``: customer and locale rotate through the eight supported languages."""
    rng = rng or random.Random(index)
    first, last, pref, country, currency, city, postal = CUSTOMERS[index % len(CUSTOMERS)]
    items = [{"sku": sku, "name": name, "quantity": rng.randint(1, 3),
              "unit_price_minor": price}
             for sku, name, price in rng.sample(PRODUCTS, rng.randint(1, 4))]
    subtotal = sum(i["quantity"] * i["unit_price_minor"] for i in items)
    tax, shipping = subtotal * 19 // 119, 495
    when = now or dt.datetime.now(dt.UTC)
    order_id = f"SF-{200000 + index}"
    return {
        "event_id": str(uuid.uuid4()), "occurred_at": when, "schema_version": 1,
        "order_id": order_id,
        "shop": dict(SHOP),
        "customer": {"customer_id": f"cus-{index}", "email": f"{_ascii(first)}.{index}@example.org",
                     "first_name": first, "last_name": last, "locale": pref},
        "items": items, "currency": currency, "subtotal_minor": subtotal, "tax_minor": tax,
        "shipping_minor": shipping, "total_minor": subtotal + shipping,
        "shipping_address": {"name": f"{first} {last}", "line1": f"{index % 90 + 1} Main Street",
                             "line2": None, "city": city, "postal_code": postal, "region": None,
                             "country": country},
        "tracking_url": f"https://nordlicht.example/orders/{order_id}",
        "estimated_delivery": (when + dt.timedelta(days=3)).date(),
    }


SHOP = {"shop_id": "shop-042", "name": "Nordlicht Outdoor",
        "logo_url": "https://cdn.shopflow.example/shops/042/logo.png",
        "support_email": "help@nordlicht.example",
        "postal_address": "Nordlicht Outdoor GmbH, Hafenstraße 12, 20457 Hamburg"}


def _user(index: int) -> dict[str, Any]:
    first, last, pref, country, *_ = CUSTOMERS[index % len(CUSTOMERS)]
    return {"user_id": f"cus-{index}", "email": f"{_ascii(first)}.{index}@example.org",
            "first_name": first, "last_name": last, "locale": pref, "country": country}


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or dt.datetime.now(dt.UTC)


def user_created(index: int, now: dt.datetime | None = None) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "occurred_at": _now(now), "schema_version": 1,
            "user": _user(index), "shop": dict(SHOP),
            "activation_url": f"https://nordlicht.example/activate?token=act{index:06d}",
            "marketing_opt_in": index % 4 != 3, "tags": ["outdoor"] + (["vip"] * (index % 5 == 0))}


def password_reset_requested(index: int, now: dt.datetime | None = None) -> dict[str, Any]:
    when = _now(now)
    return {"event_id": str(uuid.uuid4()), "occurred_at": when, "schema_version": 1,
            "user": _user(index), "shop": dict(SHOP),
            "reset_url": f"https://nordlicht.example/reset?token=rst{uuid.uuid4().hex}",
            "expires_at": when + dt.timedelta(minutes=30), "request_ip": "203.0.113.7"}


def shipment_updated(index: int, now: dt.datetime | None = None,
                     with_email: bool = False) -> dict[str, Any]:
    when = _now(now)
    history = [{"status": "LABEL_CREATED", "at": when - dt.timedelta(days=1), "location": None},
               {"status": "IN_TRANSIT", "at": when - dt.timedelta(hours=5),
                "location": "Hamburg Hub"}]
    return {"event_id": str(uuid.uuid4()), "occurred_at": when, "schema_version": 1,
            "shipment_id": f"SHP-{index:06d}", "order_id": f"SF-{200000 + index}",
            "user_id": f"cus-{index}", "email": _user(index)["email"] if with_email else None,
            "shop": dict(SHOP), "status": "OUT_FOR_DELIVERY", "carrier": "DHL",
            "tracking_url": f"https://tracking.example/SHP-{index:06d}", "history": history}


def invoice_issued(index: int, now: dt.datetime | None = None) -> dict[str, Any]:
    when = _now(now)
    lines = [{"description": "Trekking tent, 2 persons", "quantity": 1,
              "unit_price_minor": 21008, "tax_rate_bp": 1900},
             {"description": "Merino socks", "quantity": 3, "unit_price_minor": 1344,
              "tax_rate_bp": 1900}]
    net = sum(line["quantity"] * line["unit_price_minor"] for line in lines)
    tax = net * 19 // 100
    return {"event_id": str(uuid.uuid4()), "occurred_at": when, "schema_version": 1,
            "invoice_id": f"INV-2026-{index:05d}", "order_id": f"SF-{200000 + index}",
            "customer": _user(index), "shop": dict(SHOP),
            "currency": CUSTOMERS[index % len(CUSTOMERS)][4], "lines": lines,
            "net_minor": net, "tax_minor": tax, "total_minor": net + tax,
            "due_date": (when + dt.timedelta(days=14)).date()}


def support_replied(index: int, now: dt.datetime | None = None) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "occurred_at": _now(now), "schema_version": 1,
            "ticket_id": f"T-{90000 + index}", "subject": "Tent pole broken on arrival",
            "customer": _user(index), "shop": dict(SHOP), "agent_name": "Jonas",
            "reply_text": "We are sorry about the broken pole.\n\nA replacement is on its way "
                          "and should arrive within three days.",
            "customer_message": "One of the poles was broken when I opened the box.",
            "ticket_url": f"https://nordlicht.example/support/T-{90000 + index}"}


def campaign_launched(campaign_id: str = "winter-sale", now: dt.datetime | None = None, *,
                      send_at: dt.datetime | None = None, throttle_per_minute: int | None = None,
                      ab_test: dict[str, Any] | None = None, category: str = "marketing",
                      **segment: list[str]) -> dict[str, Any]:
    variant = {"weight": 50, "headline": "Winter sale: 30 % off tents",
               "body_text": "Our warmest gear is on sale this week.\n\nFree shipping over 50.",
               "cta_label": "Shop the sale", "cta_url": "https://nordlicht.example/sale"}
    return {"event_id": str(uuid.uuid4()), "occurred_at": _now(now), "schema_version": 1,
            "campaign_id": campaign_id, "name": "Winter sale 2026", "shop": dict(SHOP),
            "variants": [{**variant, "variant_id": "A", "subject": "Winter sale: 30 % off"},
                         {**variant, "variant_id": "B", "subject": "Your winter deal inside"}],
            "segment": {"locales": segment.get("locales", []),
                        "countries": segment.get("countries", []),
                        "tags_any": segment.get("tags_any", [])},
            "unsubscribe_base_url": "https://nordlicht.example/unsubscribe",
            "preferences_url": "https://nordlicht.example/account/email",
            "send_at": send_at, "throttle_per_minute": throttle_per_minute, "ab_test": ab_test,
            "category": category}


def from_example(declared: DomainEvent, index: int,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """Event ``index`` made from the catalogue's example: a new event id and time, the key and
    the address varied by index. An event needs no sample of its own; one is written only
    where variety matters (the benchmark's PDFs, the locales)."""
    schema = file_schemas().reader(declared.subject).parsed
    event = from_json(schema, declared.example())
    event["event_id"], event["occurred_at"] = str(uuid.uuid4()), _now(now)
    path_set(event, declared.key, f"cus-{index}")
    if declared.recipient:
        path_set(event, declared.recipient, f"sample.{index}@example.org")
    return event


def path_set(event: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        event = event[name]
    event[path[-1]] = value


# Samples with more variety than the example; every other event of the catalogue that has a
# recipient in it gets ``from_example`` (a campaign's recipients are profiles).
_WRITTEN: dict[str, Callable[..., dict[str, Any]]] = {
    "user.created": user_created,
    "user.password_reset_requested": password_reset_requested,
    "order.placed": lambda i, now=None: order_placed(i, now=now),
    "shipment.updated": lambda i, now=None: shipment_updated(i, now, with_email=True),
    "invoice.issued": invoice_issued, "support.replied": support_replied}
SAMPLES: dict[str, Callable[..., dict[str, Any]]] = {
    declared.topic: _WRITTEN.get(declared.topic, partial(from_example, declared))
    for declared in CATALOGUE if declared.recipient}


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.lower() or "customer"


def example(event_type: str) -> dict[str, Any]:
    return BY_TOPIC[event_type].example()
