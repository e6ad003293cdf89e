"""Realistic sample domain events for the demo, the tests and the benchmark."""

from __future__ import annotations

import datetime as dt
import json
import random
import unicodedata
import uuid
from typing import Any

from flowmail.settings import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "schemas" / "examples"

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
        "shop": {"shop_id": "shop-042", "name": "Nordlicht Outdoor",
                 "logo_url": "https://cdn.shopflow.example/shops/042/logo.png",
                 "support_email": "help@nordlicht.example",
                 "postal_address": "Nordlicht Outdoor GmbH, Hafenstraße 12, 20457 Hamburg"},
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


def _ascii(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return plain.lower() or "customer"


def example(event_type: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / f"{event_type}.json").read_text())
