"""Delivery policy as plain functions: the delivery event of an outcome, and what a failed
send becomes (a retry later, or a failure). Both senders (the batch engine and the Faust bulk
path) call these, so the policy is written once."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from core.vocab import DeliveryStatus, RejectReason, SuppressionReason
from processors.backoff import retry_delay_s
from processors.commands import DeliveryEvent, EmailCommand
from processors.errors import RejectedInput
from processors.keys import (
    delivery_event_id,
    recipient_domain,
    recipient_key,
    without_addresses,
)
from processors.suppression import change, scope_for, suppressing


def delivery_record(command: EmailCommand, status: DeliveryStatus, key_secret: bytes,
                    **fields: Any) -> dict[str, Any]:
    """One outcome of one attempt, as the record written to the delivery topic (the
    sender's hot path writes it without a DeliveryEvent in between: 5 µs an email;
    ``DeliveryEvent.from_record`` gives the event). The id is deterministic, so a repeat
    overwrites itself."""
    campaign, variant = command.campaign
    if fields.get("reason"):
        fields["reason"] = without_addresses(fields["reason"])
    return {**_UNSET, "event_id": delivery_event_id(command.idempotency_key, status.value,
                                                    command.attempt),
            "status": status.value, "idempotency_key": command.idempotency_key,
            "command_id": command.command_id, "email_type": command.email_type.value,
            "priority": command.priority.value, "locale": command.locale,
            "shop_id": command.shop_id,
            "recipient_key": recipient_key(command.recipient, key_secret),
            "recipient_domain": recipient_domain(command.recipient),
            "attempt": command.attempt, "source_event_id": command.source_event_id,
            "occurred_at": int(time.time() * 1000), "campaign_id": campaign or None,
            "variant": variant or None, **fields}


# a delivery event's optional fields, unset (DeliveryEvent's defaults)
_UNSET = {name: None for name, spec in DeliveryEvent.__dataclass_fields__.items()
          if spec.default is None}


def suppression_reason(entry: Any, command: EmailCommand) -> str | None:
    """Scopes decide (processors/suppression.py): unsubscribing from one shop's marketing
    leaves its order confirmations, and every other shop's mail, alone."""
    why = suppressing(entry, command.shop_id, command.email_type)
    return f"suppressed: {why}" if why else None


def already_sent(ledger_value: str | None) -> bool:
    return ledger_value is not None and ledger_value.startswith("sent")


@dataclass(frozen=True)
class Refusal:
    """Why a command is not sent: the delivery event it gets instead."""

    status: DeliveryStatus
    reason: str


def admission(command: EmailCommand, earlier_in_batch: bool, ledger_value: str | None,
              suppression: Any) -> Refusal | None:
    """Whether a command is sent, the same for one-by-one and batch sending: None to send.

    Not when the same key came earlier in the batch (its ledger entry is written once the
    batch is sent), when the ledger says sent, when a batch call left it ``inflight`` (the
    call's outcome is unknown: for marketing a missed email costs less than a duplicate to
    a thousand people, streams/bulk_calls.py), or when a suppression's scope covers it.
    """
    if earlier_in_batch:
        return Refusal(DeliveryStatus.SKIPPED_DUPLICATE, "ledger: same key earlier in this batch")
    if already_sent(ledger_value):
        return Refusal(DeliveryStatus.SKIPPED_DUPLICATE, f"ledger: {ledger_value}")
    if ledger_value is not None and ledger_value.startswith("inflight"):
        return Refusal(DeliveryStatus.AMBIGUOUS, f"ledger: {ledger_value}: the batch call's "
                                                 "outcome is unknown; not sent again")
    suppressed = suppression_reason(suppression, command)
    return Refusal(DeliveryStatus.SUPPRESSED, suppressed) if suppressed else None


@dataclass(frozen=True)
class Retry:
    command: EmailCommand  # the next attempt, with its not-before time
    delay_s: float


def after_failure(command: EmailCommand, err: Exception, *, transient: bool,
                  max_attempts: int, base_s: float, cap_s: float,
                  retry_after_s: float | None = None) -> Retry | RejectedInput:
    """Transient with attempts left: a retry; otherwise the reason it failed for good."""
    if transient and command.attempt < max_attempts:
        delay = retry_delay_s(command.attempt, base_s, cap_s, retry_after_s)
        return Retry(replace(command, attempt=command.attempt + 1,
                             not_before=int((time.time() + delay) * 1000)), delay)
    if transient:
        return RejectedInput(RejectReason.ATTEMPTS_EXHAUSTED,
                             f"{command.attempt} attempts: {err}"[:300])
    if isinstance(err, RejectedInput):
        return err
    return RejectedInput(RejectReason.PERMANENT_PROVIDER_ERROR, str(err)[:300])


def send_time_bounce(provider: str) -> dict[str, Any]:
    """The suppression change of an address a receiving server said does not exist."""
    return change(SuppressionReason.HARD_BOUNCE, scope_for(SuppressionReason.HARD_BOUNCE),
                  int(time.time() * 1000), f"send:{provider}")


def failure_alert(command: EmailCommand, reason: str) -> dict[str, Any]:
    return {"type": "critical_email_failed", "idempotency_key": command.idempotency_key,
            "email_type": command.email_type.value,
            "reason": (without_addresses(reason) or "")[:300],
            "at": int(time.time() * 1000)}
