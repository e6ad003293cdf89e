"""Admission (processors/delivery.py): one decision for one-by-one and batch sending."""

from __future__ import annotations

from core.vocab import DeliveryStatus, SuppressionReason
from flowmail.samples import order_placed
from processors.delivery import Refusal, admission
from processors.routing import route
from processors.suppression import change, merge, parse_change, scope_for

NOW = 1_780_000_000_000
[ORDER] = route("order.placed", order_placed(1), NOW - 50, NOW)


def _suppressed(reason: SuppressionReason, shop: str | None = None):
    return merge(None, parse_change(change(reason, scope_for(reason, shop), 1, "test")))


def test_a_new_command_is_sent():
    assert admission(ORDER, False, None, None) is None
    assert admission(ORDER, False, "failed:smtp", None) is None  # a failure is sent again


def test_duplicates_in_the_batch_and_in_the_ledger_are_skipped():
    assert admission(ORDER, True, None, None) == Refusal(
        DeliveryStatus.SKIPPED_DUPLICATE, "ledger: same key earlier in this batch")
    assert admission(ORDER, False, "sent:smtp", None) == Refusal(
        DeliveryStatus.SKIPPED_DUPLICATE, "ledger: sent:smtp")


def test_an_unknown_batch_outcome_is_never_sent_again():
    refusal = admission(ORDER, False, "inflight:abc", None)
    assert refusal is not None and refusal.status is DeliveryStatus.AMBIGUOUS


def test_suppression_scopes_decide():
    bounced = _suppressed(SuppressionReason.HARD_BOUNCE)
    refusal = admission(ORDER, False, None, bounced)
    assert refusal is not None and refusal.status is DeliveryStatus.SUPPRESSED
    # unsubscribing from the shop's marketing leaves its order confirmations alone
    assert admission(ORDER, False, None, _suppressed(SuppressionReason.UNSUBSCRIBE,
                                                     ORDER.shop_id)) is None
