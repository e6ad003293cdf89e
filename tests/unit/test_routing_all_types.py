"""Every domain event type routes to the right email type, priority and locale."""

import datetime as dt

import pytest

from core.catalogue import EmailType
from core.vocab import Priority, RejectReason
from flowmail.samples import (
    campaign_launched,
    invoice_issued,
    password_reset_requested,
    shipment_updated,
    support_replied,
    user_created,
)
from processors.campaigns import (
    choose_variant,
    matches,
    unsubscribe_token,
    verify_unsubscribe_token,
)
from processors.errors import RejectedInput
from processors.profiles import lookup, profile_from_user_created, profile_key
from processors.routing import fan_out_campaign, route

NOW_DT = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
NOW = int(NOW_DT.timestamp() * 1000)


def one(topic, event, profiles=lambda _s, _u: None):
    [command] = route(topic, event, NOW - 10, NOW, profiles)
    return command


@pytest.mark.parametrize(("topic", "event", "email_type", "priority", "locale"), [
    ("user.created", user_created(1, NOW_DT), EmailType.WELCOME, Priority.CRITICAL, "de"),
    ("user.password_reset_requested", password_reset_requested(6, NOW_DT),
     EmailType.PASSWORD_RESET, Priority.CRITICAL, "ja"),
    ("invoice.issued", invoice_issued(2, NOW_DT), EmailType.INVOICE, Priority.TRANSACTIONAL,
     "fr"),
    ("support.replied", support_replied(7, NOW_DT), EmailType.SUPPORT_RESPONSE,
     Priority.TRANSACTIONAL, "zh_Hans"),
    ("shipment.updated", shipment_updated(5, NOW_DT, with_email=True),
     EmailType.SHIPPING_UPDATE, Priority.TRANSACTIONAL, "en"),
])
def test_each_type_routes_to_its_priority(topic, event, email_type, priority, locale):
    command = one(topic, event)
    assert (command.email_type, command.priority, command.locale) == (email_type, priority,
                                                                        locale)


def test_shipment_takes_address_name_and_locale_from_the_profile():
    profile = profile_from_user_created(user_created(3, NOW_DT), partition=1)
    event = shipment_updated(3, NOW_DT)  # no email in the event
    table = {profile_key("shop-042", "cus-3"): profile}
    command = one("shipment.updated", event, lambda shop, user: lookup(table, shop, user))
    assert command.recipient == profile["email"]
    assert command.locale == "es" and command.template_data["first_name"] == "Lucía"


def test_shipment_never_takes_another_shops_profile():
    profile = profile_from_user_created(user_created(3, NOW_DT), partition=1)
    table = {profile_key("shop-999", "cus-3"): {**profile, "shop_id": "shop-999"},
             "cus-3": {**profile, "shop_id": "shop-999"}}  # a legacy key of another shop
    with pytest.raises(RejectedInput, match="no profile"):
        one("shipment.updated", shipment_updated(3, NOW_DT),
            lambda shop, user: lookup(table, shop, user))
    legacy = {"cus-3": profile}  # written before the shop was in the key: same shop is found
    assert one("shipment.updated", shipment_updated(3, NOW_DT),
               lambda shop, user: lookup(legacy, shop, user)).recipient == profile["email"]


def test_shipment_without_email_or_profile_is_rejected():
    with pytest.raises(RejectedInput) as err:
        one("shipment.updated", shipment_updated(3, NOW_DT))
    assert err.value.reason is RejectReason.MISSING_FIELD


def test_expired_reset_link_is_not_sent():
    event = password_reset_requested(1, NOW_DT - dt.timedelta(hours=2))
    with pytest.raises(RejectedInput) as err:
        one("user.password_reset_requested", event)
    assert err.value.reason is RejectReason.EXPIRED


@pytest.mark.parametrize(("topic", "event", "mutate"), [
    ("user.created", user_created(1, NOW_DT),
     lambda e: e.update(activation_url="javascript:alert(1)")),
    ("invoice.issued", invoice_issued(1, NOW_DT), lambda e: e.update(lines=[])),
    ("invoice.issued", invoice_issued(1, NOW_DT), lambda e: e.update(total_minor=-5)),
    ("support.replied", support_replied(1, NOW_DT), lambda e: e.update(subject="a\r\nBcc: x")),
    ("support.replied", support_replied(1, NOW_DT), lambda e: e.update(reply_text=" ")),
    ("campaign.launched", campaign_launched(now=NOW_DT), lambda e: e.update(variants=[])),
    ("campaign.launched", campaign_launched(now=NOW_DT),
     lambda e: e["variants"][0].update(cta_url="data:text/html,hi")),
    ("user.created", user_created(1, NOW_DT),
     lambda e: e["shop"].update(support_email="not an address")),
])
def test_bad_events_of_every_type_are_rejected(topic, event, mutate):
    mutate(event)
    with pytest.raises(RejectedInput):
        route(topic, event, NOW, NOW)


def profiles(count):
    return [profile_from_user_created(user_created(i, NOW_DT), partition=i % 3)
            for i in range(count)]


def test_campaign_reaches_opted_in_profiles_matching_the_segment():
    everyone = profiles(40)
    campaign = campaign_launched(now=NOW_DT, locales=["de", "fr"])
    commands, rejected = fan_out_campaign(campaign, "campaign.launched", everyone, NOW, NOW,
                                          b"secret")
    expected = [p for p in everyone if p["marketing_opt_in"] and p["country"] in {"DE", "FR"}]
    assert rejected == 0 and len(commands) == len(expected) > 0
    assert {c.priority for c in commands} == {Priority.MARKETING}
    assert len({c.idempotency_key for c in commands}) == len(commands)
    first = commands[0]
    assert first.template_data["unsubscribe_url"].startswith(
        "https://nordlicht.example/unsubscribe?token=")


def test_campaign_route_validates_but_does_not_fan_out_itself():
    assert route("campaign.launched", campaign_launched(now=NOW_DT), NOW, NOW) == []


def test_segment_rules():
    profile = profile_from_user_created(user_created(5, NOW_DT), 0)  # VIP, BR, opted in
    shop = profile["shop_id"]
    assert matches(shop, {"tags_any": ["vip"]}, profile)
    assert not matches(shop, {"tags_any": ["kids"]}, profile)
    assert matches(shop, {"countries": ["br"]}, profile)
    assert not matches(shop, {"locales": ["ja"]}, profile)
    assert not matches(shop, {}, profile_from_user_created(
        {**user_created(5, NOW_DT), "marketing_opt_in": False}, 0))  # opted out at signup
    assert not matches("shop-other", {}, profile)  # another shop's customer, even opted in


def test_a_campaign_reaches_only_its_own_shops_customers():
    ours = profiles(16)
    theirs = [{**p, "shop_id": "shop-777", "email": p["email"].replace("@", "+777@")}
              for p in profiles(16)]
    campaign = campaign_launched(now=NOW_DT)
    commands, _ = fan_out_campaign(campaign, "campaign.launched", ours + theirs, NOW, NOW, b"k")
    assert commands and all("+777@" not in c.recipient for c in commands)
    assert {c.shop_id for c in commands} == {campaign["shop"]["shop_id"]}


def test_variant_split_is_deterministic_and_weighted():
    variants = [{"variant_id": "A", "weight": 80}, {"variant_id": "B", "weight": 20}]
    picks = [choose_variant("c1", f"u{i}", variants)["variant_id"] for i in range(2000)]
    assert picks == [choose_variant("c1", f"u{i}", variants)["variant_id"] for i in range(2000)]
    assert 0.75 < picks.count("A") / 2000 < 0.85


def test_unsubscribe_tokens_verify_and_resist_forgery():
    token = unsubscribe_token(b"k1", "cus-1", "shop-042")
    assert verify_unsubscribe_token(b"k1", token) == ("cus-1", "shop-042")
    assert verify_unsubscribe_token(b"k2", token) is None
    kid, _, shop, mac = token.split(".")
    other = unsubscribe_token(b"k1", "cus-2", "shop-042").split(".")[1]
    assert verify_unsubscribe_token(b"k1", f"{kid}.{other}.{shop}.{mac}") is None
    assert verify_unsubscribe_token(b"k1", "garbage") is None
    assert verify_unsubscribe_token(b"k1", "a.b.c!") is None
