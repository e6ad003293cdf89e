"""Preference centre links: signed, expiring, never an unsubscribe token; the form's answers
become one consent event per changed category; the page escapes the shop's text."""

import datetime as dt
import re

import pytest

from processors import preferences
from processors.campaigns import unsubscribe_token

SECRET = b"test-unsubscribe-secret-0123456789abcdef"
NOW = 1_800_000_000


def test_a_link_names_its_person_until_it_expires():
    token = preferences.token(SECRET, "cus-1", "shop-042", NOW + 60)
    assert preferences.verify(SECRET, token, NOW) == ("cus-1", "shop-042")
    with pytest.raises(preferences.TokenRefused) as late:
        preferences.verify(SECRET, token, NOW + 61)
    assert late.value.reason == "expired"


@pytest.mark.parametrize("forge", [
    lambda t: t.replace(t.split(".")[1], "Y3VzLTI"),           # another user
    lambda t: ".".join([*t.split(".")[:3], "ffffffffff", *t.split(".")[4:]]),  # longer life
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
    lambda t: "garbage",
    lambda t: "",
])
def test_forged_links_are_refused(forge):
    token = preferences.token(SECRET, "cus-1", "shop-042", NOW + 60)
    with pytest.raises(preferences.TokenRefused) as refused:
        preferences.verify(SECRET, forge(token), NOW)
    assert refused.value.reason == "forged"


def test_an_unsubscribe_token_or_another_secret_is_not_a_preferences_link():
    with pytest.raises(preferences.TokenRefused):
        preferences.verify(SECRET, unsubscribe_token(SECRET, "cus-1", "shop-042"), NOW)
    other = preferences.token(b"another-secret-0123456789abcdef0123", "cus-1", "s", NOW + 60)
    with pytest.raises(preferences.TokenRefused):
        preferences.verify(SECRET, other, NOW)


def test_a_rotated_key_still_verifies_links_already_sent():
    old = preferences.token(b"old-key-0123456789abcdef0123456789", "cus-1", "s", NOW + 60)
    rotated = b"new-key-0123456789abcdef0123456789,old-key-0123456789abcdef0123456789"
    assert preferences.verify(rotated, old, NOW) == ("cus-1", "s")


def test_only_changed_categories_become_events():
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    current = {"marketing": True, "product_news": False, "surveys": False}
    wanted = preferences.wanted_from_form({"marketing": "on", "product_news": "on",
                                           "action": "save"})
    events = preferences.changes("cus-1", "shop-042", current, wanted, now)
    assert [(e["category"], e["granted"]) for e in events] == [("product_news", True)]
    assert events[0]["source"] == "preference_centre"
    assert events[0]["wording_version"] == preferences.WORDING_VERSION
    everything_off = preferences.wanted_from_form({"marketing": "on",
                                                   "action": "unsubscribe_all"})
    assert [(e["category"], e["granted"]) for e in preferences.changes(
        "cus-1", "shop-042", current, everything_off, now)] == [("marketing", False)]


def test_the_page_escapes_the_shops_name_and_shows_the_answers():
    html = preferences.page("<script>alert(1)</script>", {"marketing": True,
                                                         "product_news": False,
                                                         "surveys": False}, "a.b")
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html
    boxes = dict(re.findall(r'<input type="checkbox" name="(\w+)" id="\w+"\s*(checked)?>', html))
    assert boxes == {"marketing": "checked", "product_news": "", "surveys": ""}


def test_every_recipient_gets_their_own_link_also_when_rendered_once_per_group():
    from flowmail.samples import campaign_launched, user_created
    from processors.bulk import fill, group, render_bulk, render_personal
    from processors.profiles import profile_from_user_created
    from processors.rendering import Renderer
    from processors.routing import fan_out_campaign

    when = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    profiles = [profile_from_user_created({**user_created(i, when), "marketing_opt_in": True,
                                           "user": {**user_created(i, when)["user"],
                                                    "locale": "de"}}, 0) for i in range(3)]
    links = preferences.Links("https://mail.shop.example", SECRET, NOW + 3600)
    campaign = campaign_launched(now=when)
    commands, _ = fan_out_campaign(campaign, "campaign.launched", profiles, 1, 1, SECRET,
                                   pick=lambda _p: campaign["variants"][0], preferences=links)
    [together] = group(commands)
    assert len(together) == 3
    own = {c.recipient: preferences.link(links.base_url, links.token_for(p))
           for c, p in zip(commands, profiles, strict=True)}
    renderer = Renderer()
    for command, rendered in zip(together, render_personal(renderer, together), strict=True):
        assert own[command.recipient] in rendered.html and own[command.recipient] in rendered.text
        assert not any(link in rendered.html for r, link in own.items()
                       if r != command.recipient)
    bulk = render_bulk(renderer, together, "%recipient.{}%")
    for recipient in bulk.recipients:
        filled = fill(bulk.rendered.html, "%recipient.{}%", recipient.values)
        assert own[recipient.command.recipient] in filled
