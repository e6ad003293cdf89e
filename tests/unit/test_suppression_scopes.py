"""Suppression scopes: what each reason stops, merging changes, and the legacy migration."""

import pytest

from core.catalogue import EmailType
from core.vocab import Category, SuppressionReason
from processors.errors import RejectedInput
from processors.suppression import change, merge, parse_change, scope_for, suppressing

SHOP, OTHER = "shop-042", "shop-777"
ALL_TYPES = list(EmailType)


def entry_of(*changes):
    entry = None
    for update in changes:
        entry = merge(entry, parse_change(update))
    return entry


def stopped(entry, shop):
    return {t for t in ALL_TYPES if suppressing(entry, shop, t)}


def test_hard_bounce_and_complaint_stop_everything_but_security_mail_everywhere():
    for reason in (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT):
        entry = entry_of(change(reason, scope_for(reason), 1, "webhook"))
        for shop in (SHOP, OTHER):
            assert stopped(entry, shop) == set(ALL_TYPES) - {EmailType.PASSWORD_RESET}


def test_unsubscribe_stops_only_that_shops_marketing():
    entry = entry_of(change(SuppressionReason.UNSUBSCRIBE,
                            scope_for(SuppressionReason.UNSUBSCRIBE, SHOP), 1, "link"))
    assert stopped(entry, SHOP) == {EmailType.MARKETING_CAMPAIGN}
    assert stopped(entry, OTHER) == set()
    assert "unsubscribe (shop-042/marketing)" in suppressing(entry, SHOP,
                                                             EmailType.MARKETING_CAMPAIGN)


def test_manual_scopes_and_lifting_one_scope_keeps_the_others():
    manual = scope_for(SuppressionReason.MANUAL, OTHER, Category.TRANSACTIONAL)
    unsubscribe = scope_for(SuppressionReason.UNSUBSCRIBE, SHOP)
    entry = entry_of(change(SuppressionReason.MANUAL, manual, 1, "cli"),
                     change(SuppressionReason.UNSUBSCRIBE, unsubscribe, 2, "link"))
    assert EmailType.INVOICE in stopped(entry, OTHER)
    assert EmailType.INVOICE not in stopped(entry, SHOP)
    lifted = merge(entry, parse_change(change(None, manual, 3, "cli")))
    assert stopped(lifted, OTHER) == set() and stopped(lifted, SHOP) == {
        EmailType.MARKETING_CAMPAIGN}
    assert merge(lifted, parse_change(change(None, unsubscribe, 4, "cli"))) is None
    assert merge(entry, None) is None  # a tombstone lifts everything


def test_legacy_entries_without_scope_are_migrated_by_the_stated_rule():
    assert stopped({"reason": "hard_bounce", "at": 1}, OTHER) == \
        set(ALL_TYPES) - {EmailType.PASSWORD_RESET}
    # an old unsubscribe did not record its shop: no marketing from any shop, nothing else
    assert stopped({"reason": "unsubscribe", "at": 1}, OTHER) == {EmailType.MARKETING_CAMPAIGN}
    merged = entry_of({"reason": "unsubscribe", "at": 1})
    assert merged == {"scopes": {"*/marketing": {"reason": "unsubscribe", "at": 1}}}


@pytest.mark.parametrize("bad", [[1], {"reason": "spite"}, {"reason": "manual", "scope": "x"},
                                 {"reason": "manual", "scope": "s/holidays"}, {"lift": "/"}])
def test_bad_changes_are_rejected(bad):
    with pytest.raises(RejectedInput):
        parse_change(bad)


def test_security_mail_and_shopless_unsubscribes_cannot_be_scoped():
    with pytest.raises(ValueError, match="security"):
        scope_for(SuppressionReason.MANUAL, SHOP, Category.SECURITY)
    with pytest.raises(ValueError, match="shop"):
        scope_for(SuppressionReason.UNSUBSCRIBE)
