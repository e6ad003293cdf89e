"""flowmail's own domain events to its operators (``ops.alert``, ``ops.daily_report``):
they go through the same router, ledger and senders as every shop's mail.

Event ids are derived from what the event is about (an alert's state change, a report's
day), so publishing one again (a restart, a second process, ``flowmail report daily
--send`` after the worker already sent it) gives the same idempotency keys and the ledgers
send nobody a second mail.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from email.utils import parseaddr
from typing import Any

from core.catalogue import BY_EMAIL_TYPE, EmailType
from core.settings import Settings

NAMESPACE = uuid.UUID("5b0f6f3e-8c1d-4e7a-9f2b-6a4c3d2e1f00")
ALERT_TOPIC = BY_EMAIL_TYPE[EmailType.OPERATOR_ALERT].topic
REPORT_TOPIC = BY_EMAIL_TYPE[EmailType.DAILY_REPORT].topic


def operators(raw: str) -> list[str]:
    return [address.strip() for address in raw.split(",") if address.strip()]


def operator_shop(sender_name: str, reply_to: str, mail_from: str) -> dict[str, Any]:
    """The ``shop`` record of operator mail: flowmail itself."""
    return {"shop_id": "flowmail", "name": sender_name, "logo_url": None,
            "support_email": reply_to or parseaddr(mail_from)[1], "postal_address": None}


def operator_shop_of(settings: Settings) -> dict[str, Any]:
    """The ``shop`` record of operator mail as the settings name it (one place for the
    anomaly detector, the scheduled report and ``flowmail report daily``)."""
    return operator_shop(settings.operator_sender_name, settings.operator_reply_to,
                         settings.mail_from)


def _event_id(app_id: str, *parts: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "/".join((app_id, *parts))))


def alert_event(app_id: str, alert: dict[str, Any], summary: str, to: list[str],
                shop: dict[str, Any]) -> dict[str, Any]:
    """The ``ops.alert`` event of one raised or cleared alert (streams/anomaly.py)."""
    at = int(alert.get("at") or 0)
    return {"event_id": _event_id(app_id, "alert", alert["id"], alert["state"], str(at)),
            "occurred_at": dt.datetime.fromtimestamp(at / 1000, tz=dt.UTC),
            "schema_version": 1, "alert_id": alert["id"], "rule": alert["rule"],
            "dimension": alert["dimension"], "key": str(alert["key"]),
            "state": alert["state"], "rate": alert.get("rate"),
            "threshold": float(alert["threshold"]), "sample": int(alert.get("sample") or 0),
            "summary": summary[:500], "operators": to, "shop": shop}


def report_event(app_id: str, figures: dict[str, Any], to: list[str],
                 shop: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The ``ops.daily_report`` event of one day's figures (processors/daily_report.py)."""
    return {"event_id": _event_id(app_id, "daily_report", figures["date"]),
            "occurred_at": now, "schema_version": 1, "report_date": figures["date"],
            "figures_json": json.dumps(figures, separators=(",", ":")), "operators": to,
            "shop": shop}


def report_due(now: dt.datetime, at: str, last_sent: dt.date | None) -> dt.date | None:
    """The day whose report is due at ``now`` (yesterday, once ``at`` has passed today), or
    None when it is not due or was sent."""
    hours, _, minutes = at.partition(":")
    due_at = dt.datetime.combine(now.date(), dt.time(int(hours), int(minutes or 0)),
                                 tzinfo=dt.UTC)
    day = now.date() - dt.timedelta(days=1)
    if now < due_at or last_sent == day:
        return None
    return day
