"""The catalogue: every domain event flowmail turns into mail, and the email type it asks
for, declared once.

Everything else is derived from ``CATALOGUE``: the domain topics and their Avro subjects
(streams/topics.py), the publisher's message keys (flowmail/publisher.py), each email type's
priority and consent category (processors/routing.py, processors/suppression.py), which
routes run in the critical lane, the previews and their example data, the samples, the
benchmark's mix (bench/workload.py) and the events table in docs/contracts.md;
tests/unit/test_catalogue.py fails when any of them disagrees. Adding an event:
docs/extending.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from core.settings import SCHEMA_DIR
from core.vocab import Category, Priority

EXAMPLES_DIR = SCHEMA_DIR / "examples"


class EmailType(StrEnum):
    """An email flowmail can send; its templates live in ``templates/<value>/``."""

    WELCOME = "welcome"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a name, not a secret
    ORDER_CONFIRMATION = "order_confirmation"
    SHIPPING_UPDATE = "shipping_update"
    INVOICE = "invoice"
    SUPPORT_RESPONSE = "support_response"
    MARKETING_CAMPAIGN = "marketing_campaign"
    OPERATOR_ALERT = "operator_alert"
    DAILY_REPORT = "daily_report"


class PublishedEvent:
    """What every event upstream services publish has: a topic, a key path, a subject, an
    example (for ``DomainEvent`` and ``StateEvent``)."""

    topic: str
    key: tuple[str, ...]

    @property
    def subject(self) -> str:
        """The Avro subject of the topic's values (TopicNameStrategy)."""
        return f"{self.topic}-value"

    @property
    def example_file(self) -> Path:
        """A valid event in JSON: the preview data, the docs' example and the default sample."""
        return EXAMPLES_DIR / f"{self.topic}.json"

    def example(self) -> dict[str, Any]:
        return json.loads(self.example_file.read_text())

    def key_of(self, event: dict[str, Any]) -> str:
        """The message key of ``event``; ``KeyError``/``TypeError`` when the field is missing."""
        return str(path_get(event, self.key))


@dataclass(frozen=True)
class DomainEvent(PublishedEvent):
    """One domain event: its topic, the email it asks for, and how it travels.

    ``key``: the path of the Kafka message key in the event. Everything about a user is keyed
    by the user id, so a user's events share a partition with their profile and routing finds
    it. ``recipient``: the path of the address in the event (empty: the recipients are many,
    a campaign's profiles or the operators). ``daily_volume``: emails a day in the case
    study's load, which the benchmark scales (a campaign: recipients; flowmail's own: 0).
    """

    topic: str
    email_type: EmailType
    priority: Priority
    category: Category
    key: tuple[str, ...]
    recipient: tuple[str, ...]
    daily_volume: int
    doc: str


def path_get(event: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = event
    for name in path:
        value = value[name]
    return value


CATALOGUE: tuple[DomainEvent, ...] = (
    DomainEvent("user.created", EmailType.WELCOME, Priority.CRITICAL, Category.ACCOUNT,
                key=("user", "user_id"), recipient=("user", "email"), daily_volume=500,
                doc="a customer signed up: the welcome and activation mail"),
    DomainEvent("user.password_reset_requested", EmailType.PASSWORD_RESET, Priority.CRITICAL,
                Category.SECURITY, key=("user", "user_id"), recipient=("user", "email"),
                daily_volume=200, doc="a password reset was asked for: the reset link"),
    DomainEvent("order.placed", EmailType.ORDER_CONFIRMATION, Priority.TRANSACTIONAL,
                Category.TRANSACTIONAL, key=("customer", "customer_id"),
                recipient=("customer", "email"), daily_volume=5000,
                doc="an order was placed: the confirmation with its PDF"),
    DomainEvent("shipment.updated", EmailType.SHIPPING_UPDATE, Priority.TRANSACTIONAL,
                Category.TRANSACTIONAL, key=("user_id",), recipient=("email",),
                daily_volume=8000, doc="a shipment moved: the tracking update"),
    DomainEvent("invoice.issued", EmailType.INVOICE, Priority.TRANSACTIONAL,
                Category.TRANSACTIONAL, key=("customer", "user_id"),
                recipient=("customer", "email"), daily_volume=1000,
                doc="an invoice was issued: the invoice with its PDF"),
    DomainEvent("support.replied", EmailType.SUPPORT_RESPONSE, Priority.TRANSACTIONAL,
                Category.TRANSACTIONAL, key=("customer", "user_id"),
                recipient=("customer", "email"), daily_volume=300,
                doc="support answered a ticket: the reply"),
    DomainEvent("campaign.launched", EmailType.MARKETING_CAMPAIGN, Priority.MARKETING,
                Category.MARKETING, key=("campaign_id",), recipient=(), daily_volume=50000,
                doc="a campaign was launched: one mail per opted-in profile of its segment"),
    # flowmail's own events: its operators get their alerts and reports through flowmail
    DomainEvent("ops.alert", EmailType.OPERATOR_ALERT, Priority.CRITICAL, Category.OPERATIONS,
                key=("alert_id",), recipient=(), daily_volume=0,
                doc="an anomaly alert was raised or cleared: one mail per operator"),
    DomainEvent("ops.daily_report", EmailType.DAILY_REPORT, Priority.TRANSACTIONAL,
                Category.OPERATIONS, key=("report_date",), recipient=(), daily_volume=0,
                doc="the day's report is ready: one mail per operator, with its PDF"),
)



@dataclass(frozen=True)
class StateEvent(PublishedEvent):
    """An event upstream services publish that changes what flowmail knows about a person
    and sends nothing itself (streams/topics.py declares its topic from here)."""

    topic: str
    key: tuple[str, ...]
    doc: str


CONSENT_CHANGED = StateEvent(
    "consent.changed", key=("user_id",),
    doc="a person opted in to or out of a category of a shop's email (the consent record)")
ERASURE_REQUESTED = StateEvent(
    "privacy.erasure_requested", key=("user_id",),
    doc="a person asked a shop to erase their data (GDPR art. 17)")
STATE_EVENTS: tuple[StateEvent, ...] = (CONSENT_CHANGED, ERASURE_REQUESTED)

BY_TOPIC: dict[str, DomainEvent] = {event.topic: event for event in CATALOGUE}
BY_EMAIL_TYPE: dict[EmailType, DomainEvent] = {event.email_type: event for event in CATALOGUE}
DOMAIN_TOPICS: tuple[str, ...] = tuple(BY_TOPIC)
EMAIL_OF: dict[str, EmailType] = {event.topic: event.email_type for event in CATALOGUE}
PRIORITY_OF: dict[EmailType, Priority] = {e.email_type: e.priority for e in CATALOGUE}
CATEGORY_OF: dict[EmailType, Category] = {e.email_type: e.category for e in CATALOGUE}


def topics_of(priority: Priority) -> list[str]:
    """The domain topics whose emails have ``priority``."""
    return sorted(event.topic for event in CATALOGUE if event.priority is priority)
