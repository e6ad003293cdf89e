"""The email command and delivery event as typed values, convertible to and from Avro records."""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from typing import Any, TypeVar

from core import json_text
from core.catalogue import EmailType
from core.vocab import DeliveryStatus, Priority


@dataclass(frozen=True)
class EmailCommand:
    command_id: str
    idempotency_key: str
    email_type: EmailType
    priority: Priority
    recipient: str
    recipient_name: str
    locale: str
    template_data: dict[str, Any]
    shop_id: str
    source_event_id: str
    source_topic: str
    event_published_at: int
    created_at: int
    not_before: int | None = None
    attempt: int = 1

    @property
    def campaign(self) -> tuple[str, str]:
        """(campaign id, variant id) of campaign mail; ("", "") for any other."""
        campaign = self.template_data.get("campaign_id")
        if not campaign:
            return "", ""
        variant = self.template_data.get("variant")
        return str(campaign), str(variant.get("variant_id") or "") if isinstance(
            variant, dict) else ""

    def to_record(self) -> dict[str, Any]:
        # not dataclasses.asdict: it deep-copies template_data, a third of the router's time
        record = dict(self.__dict__)
        record["email_type"] = self.email_type.value
        record["priority"] = self.priority.value
        record["template_data"] = json_text.dumps(self.template_data)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> EmailCommand:
        values = dict(record)
        values["email_type"] = _EMAIL_TYPES.get(values["email_type"]) or EmailType(
            values["email_type"])  # an unknown value raises as the Enum does
        values["priority"] = _PRIORITIES.get(values["priority"]) or Priority(values["priority"])
        values["template_data"] = json_text.loads(values["template_data"])
        values["event_published_at"] = _millis(values["event_published_at"])
        values["created_at"] = _millis(values["created_at"])
        if values.get("not_before") is not None:
            values["not_before"] = _millis(values["not_before"])
        return _built(cls, values)


@dataclass(frozen=True)
class DeliveryEvent:
    event_id: str
    status: DeliveryStatus
    idempotency_key: str
    command_id: str
    email_type: str
    priority: str
    locale: str
    shop_id: str
    recipient_key: str
    recipient_domain: str
    attempt: int
    source_event_id: str
    occurred_at: int
    provider: str | None = None
    provider_message_id: str | None = None
    latency_ms: float | None = None
    reason: str | None = None
    campaign_id: str | None = None  # marketing: the campaign and A/B variant
    variant: str | None = None
    bounce_type: str | None = None  # bounced: "hard" or "soft"
    url: str | None = None          # clicked: the link followed
    agent: str | None = None        # opened/clicked: human, prefetch or scanner
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def campaign(self) -> str | None:
        """``<shop>/<campaign>``: what the anomaly rules count a campaign by (campaign ids are
        the shops' own: two shops' campaigns of one id are two campaigns)."""
        return f"{self.shop_id}/{self.campaign_id}" if self.campaign_id else None

    def to_record(self) -> dict[str, Any]:
        # every field is flat: no dataclasses.asdict (a deep copy, a fifth of the sink's time)
        record = dict(self.__dict__)
        del record["extra"]
        record["status"] = self.status.value
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DeliveryEvent:
        values = dict(record)
        values["status"] = _status(values["status"])
        values["occurred_at"] = _millis(values["occurred_at"])
        return _built(cls, values)


Built = TypeVar("Built", EmailCommand, DeliveryEvent)


def _built(cls: type[Built], values: dict[str, Any]) -> Built:
    """``cls(**values)`` when ``values`` holds exactly the fields a record has: a frozen
    dataclass's __init__ sets each field through ``object.__setattr__``, 4-6 µs for a
    delivery event (the sink reads one an email, the sender a command); filling the
    instance's dict at once makes the same object. Anything else (a field missing, one too
    many) goes through __init__, which fills the defaults or refuses the name."""
    recorded, made = _SHAPES[cls]
    if values.keys() != recorded:
        return cls(**values)
    built = object.__new__(cls)
    built.__dict__.update(values)
    for name, factory in made:
        built.__dict__[name] = factory()
    return built


def _shape(cls: type) -> tuple[frozenset[str], tuple[tuple[str, Any], ...]]:
    """(fields a record holds, (name, factory) of those only a factory makes)."""
    made = tuple((f.name, f.default_factory) for f in fields(cls)
                 if f.default_factory is not MISSING)
    return frozenset(f.name for f in fields(cls)) - {name for name, _ in made}, made


_SHAPES = {cls: _shape(cls) for cls in (EmailCommand, DeliveryEvent)}


# value -> member, looked up in a dict: calling an Enum class (its metaclass's __call__)
# took 0.6 µs a value against 0.2, 4 % of a batch-API worker's samples (docs/performance.md)
_EMAIL_TYPES: dict[str, EmailType] = {member.value: member for member in EmailType}
_PRIORITIES: dict[str, Priority] = {member.value: member for member in Priority}
_STATUSES: dict[str, DeliveryStatus] = {member.value: member for member in DeliveryStatus}


def _status(value: str) -> DeliveryStatus:
    """A status this version does not know (a newer producer's) reads as UNKNOWN."""
    return _STATUSES.get(value, DeliveryStatus.UNKNOWN)


def _millis(value: Any) -> int:
    """fastavro returns timestamp-millis as aware datetimes; keep plain epoch millis."""
    if isinstance(value, int):
        return value
    return int(value.timestamp() * 1000)
