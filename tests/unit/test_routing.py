import pytest

from core.catalogue import EmailType
from core.vocab import Priority, RejectReason
from flowmail.samples import order_placed
from processors.errors import RejectedInput
from processors.keys import idempotency_key
from processors.routing import route

NOW = 1_800_000_000_000


def routed(event, topic="order.placed"):
    return route(topic, event, NOW - 50, NOW)


def test_order_placed_becomes_one_transactional_confirmation():
    event = order_placed(1)
    [command] = routed(event)
    assert command.email_type is EmailType.ORDER_CONFIRMATION
    assert command.priority is Priority.TRANSACTIONAL
    assert command.recipient == event["customer"]["email"]
    assert command.locale == "de"
    assert command.idempotency_key == idempotency_key(
        event["event_id"], "order_confirmation", event["customer"]["email"])
    assert command.event_published_at == NOW - 50
    assert command.template_data["order_id"] == event["order_id"]


def test_same_event_routes_to_the_same_idempotency_key():
    event = order_placed(4)
    assert routed(event)[0].idempotency_key == routed(event)[0].idempotency_key


def test_locale_from_country_when_no_preference():
    event = order_placed(2)  # FR customer without a preference
    assert routed(event)[0].locale == "fr"


@pytest.mark.parametrize(("mutate", "reason"), [
    (lambda e: e["customer"].update(email="not-an-address"), RejectReason.INVALID_ADDRESS),
    (lambda e: e["customer"].update(email=""), RejectReason.MISSING_FIELD),
    (lambda e: e["customer"].update(email="a@b.org\r\nBcc: x@evil.org"),
     RejectReason.HEADER_INJECTION),
    (lambda e: e["customer"].update(first_name="Eve\r\nBcc: x@evil.org"),
     RejectReason.HEADER_INJECTION),
    (lambda e: e["customer"].update(last_name="nul\x00"), RejectReason.HEADER_INJECTION),
    (lambda e: e["shop"].update(name="Shop\nX-Evil: 1"), RejectReason.HEADER_INJECTION),
    (lambda e: e.update(items=[]), RejectReason.MISSING_FIELD),
    (lambda e: e.update(order_id="  "), RejectReason.MISSING_FIELD),
    (lambda e: e.update(total_minor=-1), RejectReason.SCHEMA_MISMATCH),
    (lambda e: e["items"][0].update(quantity=0), RejectReason.SCHEMA_MISMATCH),
])
def test_bad_events_are_rejected_with_a_reason(mutate, reason):
    event = order_placed(1)
    mutate(event)
    with pytest.raises(RejectedInput) as err:
        routed(event)
    assert err.value.reason is reason


def test_internationalized_address_is_accepted():
    event = order_placed(1)
    event["customer"]["email"] = "josé@exämple.de"
    assert routed(event)[0].recipient.endswith("@exämple.de")


def test_unknown_topic_is_rejected():
    with pytest.raises(RejectedInput) as err:
        route("does.not.exist", {}, NOW, NOW)
    assert err.value.reason is RejectReason.UNSUPPORTED_TOPIC


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
def test_every_line_separator_is_refused_in_header_values(separator):
    """Found by the hostile-input property test: a corrupted payload with a vertical tab."""
    event = order_placed(1)
    event["customer"]["first_name"] = f"Eve{separator}Bcc: x@evil.org"
    with pytest.raises(RejectedInput) as err:
        routed(event)
    assert err.value.reason is RejectReason.HEADER_INJECTION


def test_every_routed_topic_names_its_email_and_critical_topics_follow_from_it():
    from core.catalogue import EMAIL_OF, topics_of
    from core.vocab import Priority
    from processors.routing import ROUTES
    assert set(EMAIL_OF) == set(ROUTES)
    # security mail and flowmail's own alerts to its operators
    assert topics_of(Priority.CRITICAL) == ["ops.alert", "user.created",
                                            "user.password_reset_requested"]
    assert sum(len(topics_of(p)) for p in Priority) == len(EMAIL_OF)
