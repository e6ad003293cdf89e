"""Tracking ids: signed, tamper-evident, rotatable; links rewritten but the unsubscribe link;
a pixel added; who fetched them told apart; security mail never tracked."""

from __future__ import annotations

import dataclasses
import re

import pytest

from core.catalogue import EmailType
from core.vocab import DeliveryStatus
from flowmail.samples import order_placed
from processors.rendering import RenderedEmail
from processors.routing import route
from processors.tracking import TokenError, Tracker, classify_agent, sign, tracking_event, verify

SECRET = "tracking-secret-0123456789abcdef0123"
NOW = 1_800_000_000_000


def tracker(types="marketing_campaign,order_confirmation,password_reset"):
    return Tracker.of(SECRET, "https://t.shop.example/", types, b"pseudonym")


def order_command():
    [command] = route("order.placed", order_placed(1), NOW - 50, NOW)
    return dataclasses.replace(command, template_data={
        **command.template_data, "unsubscribe_url": "https://shop.example/unsubscribe?token=x"})


PAGE = ('<html><body><a href="https://shop.example/orders/1?a=1&amp;b=2">order</a>'
        '<A class="x" HREF="http://shop.example/help">help</A>'
        '<a href="https://shop.example/unsubscribe?token=x">unsubscribe</a>'
        '<a href="mailto:help@shop.example">mail</a></body></html>')


def test_a_token_verifies_only_untouched_and_with_a_key_in_the_list():
    token = sign(b"new-key", {"k": "abc", "u": "https://x.example/"})
    assert verify([b"new-key"], token)["u"] == "https://x.example/"
    assert verify([b"newer-key", b"new-key"], token)["k"] == "abc"  # rotation: old still works
    body, _, mac = token.partition(".")
    for forged in (f"{body}x.{mac}", f"{body}.{mac[:-2]}AA", body, "", "a.b.c",
                   sign(b"other-key", {"k": "abc", "u": "https://x.example/"})):
        with pytest.raises(TokenError):
            verify([b"new-key"], forged)


def test_links_are_rewritten_but_unsubscribe_and_mailto_and_a_pixel_is_added():
    command = order_command()
    track = tracker()
    rendered = RenderedEmail(subject="s", text="see https://shop.example/orders/1", html=PAGE)
    out = track.apply(rendered, command, track.recipient_token(command))
    links = re.findall(r'href="([^"]+)"', out.html, re.IGNORECASE)
    assert links[0].startswith("https://t.shop.example/t/c/")
    assert links[1].startswith("https://t.shop.example/t/c/")
    assert links[2:] == ["https://shop.example/unsubscribe?token=x", "mailto:help@shop.example"]
    assert out.text == rendered.text  # the text part is left as written
    link_token, recipient_token = links[0].rsplit("/t/c/", 1)[1].split("/")
    keys = list(track.keys)
    assert verify(keys, link_token)["u"] == "https://shop.example/orders/1?a=1&b=2"
    recipient = verify(keys, recipient_token)
    assert recipient["k"] == command.idempotency_key
    assert command.recipient not in out.html.replace(f"mailto:{command.recipient}", "")
    assert command.recipient.split("@")[0] not in links[0]
    [pixel] = re.findall(r'<img src="([^"]+)"', out.html)
    assert pixel.endswith(f"/{recipient_token}.gif") and out.html.index(pixel) < \
        out.html.index("</body>")


def test_security_mail_and_untracked_types_are_never_tracked():
    track = tracker()
    assert track.enabled(order_command())
    assert not tracker("marketing_campaign").enabled(order_command())
    assert not Tracker.of("", "https://t.example", "order_confirmation", b"").enabled(
        order_command())
    reset = dataclasses.replace(order_command(), email_type=EmailType.PASSWORD_RESET)
    assert not track.enabled(reset)  # listed, and still never


@pytest.mark.parametrize("agent, method, who", [
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15", "GET",
     "human"),
    ("Mozilla/5.0", "GET", "prefetch"),  # Apple Mail Privacy Protection
    ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com "
     "GoogleImageProxy)", "GET", "human"),  # Gmail fetches when the mail is opened
    ("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html", "GET",
     "prefetch"),
    ("Mozilla/5.0 (compatible; Barracuda Sentinel)", "GET", "scanner"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0", "HEAD", "scanner"),
    ("", "GET", "scanner"),
    ("python-requests/2.32", "GET", "scanner"),
])
def test_who_fetched_a_tracking_url(agent, method, who):
    assert classify_agent(agent, method) == who


def test_a_tracking_event_has_no_address_and_two_fetches_two_ids():
    context = {"s": "shop-1", "t": "marketing_campaign", "p": "marketing", "c": "spring",
               "v": "B"}
    recipient = {"k": "k" * 40, "r": "r" * 32, "d": "example.org"}
    one = tracking_event(DeliveryStatus.CLICKED, context, recipient, "human", NOW, "1",
                         "https://x.example/")
    two = tracking_event(DeliveryStatus.CLICKED, context, recipient, "human", NOW, "2",
                         "https://x.example/")
    assert one.event_id != two.event_id
    assert (one.campaign_id, one.variant, one.agent, one.url, one.shop_id) == (
        "spring", "B", "human", "https://x.example/", "shop-1")
