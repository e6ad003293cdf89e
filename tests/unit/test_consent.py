"""Consent records: per (shop, user, category), newest wins, the signup's opt-in is the first
marketing consent, and campaigns reach only a current opt-in for their category."""

import datetime as dt

import pytest

from core.vocab import RejectReason
from flowmail.samples import campaign_launched, user_created
from processors import consent
from processors.campaigns import matches
from processors.errors import RejectedInput
from processors.profiles import profile_from_user_created, profile_with_consent
from processors.routing import validate_campaign

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def change(category="marketing", granted=True, minutes=0, source="preference_centre",
           shop="shop-042", user="cus-1"):
    return consent.change_event("e", shop, user, category, granted, source, "w-1",
                                T0 + dt.timedelta(minutes=minutes))


def signed_up(opt_in=True, minutes=0):
    return {**user_created(1, T0 + dt.timedelta(minutes=minutes)), "marketing_opt_in": opt_in}


def test_the_signup_opt_in_is_the_first_marketing_consent():
    profile = profile_from_user_created(signed_up(True), 0)
    held = profile["consent"]["marketing"]
    assert held["granted"] and held["source"] == "signup"
    assert consent.categories(profile) == {"marketing": True, "product_news": False,
                                           "surveys": False}


def test_newer_wins_whatever_order_the_events_arrive_in():
    signup = signed_up(True, minutes=0)
    withdrawn = change("marketing", False, minutes=5)
    # withdrawal first (another topic, no order), then the older signup: still withdrawn
    stub = profile_with_consent(None, withdrawn, 0)
    assert "email" not in stub and not consent.granted(stub, "marketing")
    profile = profile_from_user_created(signup, 0, stub)
    assert not consent.granted(profile, "marketing") and profile["email"]
    # an older re-grant does not undo it; a newer one does
    assert not consent.granted(profile_with_consent(profile, change(minutes=3), 0), "marketing")
    assert consent.granted(profile_with_consent(profile, change(minutes=9), 0), "marketing")


def test_profiles_from_before_consent_records_keep_their_opt_in():
    legacy = {"shop_id": "shop-042", "user_id": "u", "email": "a@example.org",
              "marketing_opt_in": True}
    assert consent.granted(legacy, "marketing") and not consent.granted(legacy, "surveys")


def test_a_campaign_reaches_only_a_current_opt_in_for_its_category():
    profile = profile_from_user_created(signed_up(True), 0)
    shop = profile["shop_id"]
    assert matches(shop, {}, profile, "marketing")
    assert not matches(shop, {}, profile, "product_news")
    news = profile_with_consent(profile, change("product_news", True, 1, shop=shop), 0)
    assert matches(shop, {}, news, "product_news")
    assert not matches("another-shop", {}, news, "product_news")
    stub = profile_with_consent(None, change("product_news", True, 1, shop=shop), 0)
    assert not matches(shop, {}, stub, "product_news")  # no address yet


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("category", "everything", RejectReason.SCHEMA_MISMATCH),
    ("source", "a rumour", RejectReason.SCHEMA_MISMATCH),
    ("shop_id", " ", RejectReason.MISSING_FIELD),
    ("user_id", "", RejectReason.MISSING_FIELD),
])
def test_bad_consent_events_are_refused_with_a_reason(field, value, reason):
    with pytest.raises(RejectedInput) as refused:
        consent.validate_change({**change(), field: value})
    assert refused.value.reason == reason


def test_marketing_without_the_shops_postal_address_is_refused():
    event = campaign_launched(now=T0)
    validate_campaign(event)
    event["shop"]["postal_address"] = "  "
    with pytest.raises(RejectedInput) as refused:
        validate_campaign(event)
    assert refused.value.reason == RejectReason.MISSING_POSTAL_ADDRESS
    assert "CAN-SPAM" in str(refused.value)


def test_a_campaign_of_an_unknown_category_is_refused():
    with pytest.raises(RejectedInput):
        validate_campaign({**campaign_launched(now=T0), "category": "gossip"})
