"""Property-based: random and hostile input ends as a valid command or a reasoned rejection.

Whatever arrives, decode + route + render + MIME either yields commands that are safe to send
or raises RejectedInput/ContractError with a reason from the closed vocabulary, which is what
the dead-letter policy needs; any other exception would be an `internal` dead letter, a bug.
"""

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.avro import ContractError, registry
from core.catalogue import PRIORITY_OF
from core.vocab import RejectReason
from flowmail.samples import SAMPLES
from processors.errors import RejectedInput
from processors.locales import SUPPORTED
from processors.message import build_message
from processors.rendering import Renderer
from processors.routing import route
from processors.validation import deliverable_address

NOW_DT = dt.datetime.now(dt.UTC)
NOW = int(NOW_DT.timestamp() * 1000)
RENDERER = Renderer()
REASONS = {r.value for r in RejectReason} | {"unknown_subject", "unknown_event_type"}
TOPICS = sorted(SAMPLES)

hostile_text = st.one_of(
    st.text(max_size=50),
    st.text(alphabet=st.sampled_from("a\r\n\x00<>\"'&%{}é漢 "), max_size=40),
    st.just("<script>alert(1)</script>"), st.just("x" * 5000), st.just("Bcc: a@b.c\r\n"),
    st.just("{{ 7*7 }}"), st.just("{% raw %}"),
)
addresses = st.one_of(
    st.emails(), hostile_text, st.just("josé@exämple.de"), st.just("a@b"),
    st.just("a@@b.org"), st.just("a@b.org\r\nBcc: x@y.org"), st.just(""),
    st.just("x" * 300 + "@example.org"),
)
locales = st.one_of(st.none(), st.sampled_from(["de-DE", "pt_BR", "zh-Hant", "xx", "", "ja"]),
                    hostile_text)
amounts = st.integers(min_value=-(2**40), max_value=2**40)


def outcome(topic, payload):
    """Run the router's pure chain; return commands or the rejection reason."""
    try:
        event = registry().decode(f"{topic}-value", payload)
        commands = route(topic, event, NOW, NOW)
        for command in commands:
            build_message(command, RENDERER.render(command), "Shop <no-reply@shop.example>")
        return commands
    except (RejectedInput, ContractError) as err:
        assert err.reason in REASONS or getattr(err.reason, "value", None) in REASONS
        return err.reason


def check_commands(commands):
    for command in commands:
        assert command.priority is PRIORITY_OF[command.email_type]
        assert command.locale in SUPPORTED
        deliverable_address("recipient", command.recipient)
        assert not any(ch in command.recipient_name for ch in "\r\n\x00")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=st.sampled_from(TOPICS), payload=st.binary(max_size=300))
def test_random_bytes_are_rejected_with_a_reason(topic, payload):
    result = outcome(topic, payload)
    assert not isinstance(result, list) or result == [] or check_commands(result) is None


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=st.sampled_from(TOPICS), flip=st.integers(min_value=5), value=st.integers(0, 255))
def test_corrupted_valid_payloads_never_crash(topic, flip, value):
    payload = bytearray(registry().encode(f"{topic}-value", SAMPLES[topic](1, NOW_DT)))
    payload[flip % len(payload)] = value
    result = outcome(topic, bytes(payload))
    if isinstance(result, list):
        check_commands(result)


def people(event):
    for key in ("user", "customer"):
        if key in event:
            yield event[key]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(topic=st.sampled_from(TOPICS), index=st.integers(0, 7), email=addresses,
       first=hostile_text, last=hostile_text, locale=locales, shop_name=hostile_text,
       amount=amounts)
def test_hostile_field_values_end_as_commands_or_reasons(topic, index, email, first, last,
                                                         locale, shop_name, amount):
    event = SAMPLES[topic](index, NOW_DT)
    for person in people(event):
        person.update(email=email, first_name=first, last_name=last, locale=locale)
    if "email" in event:
        event["email"] = email
    event["shop"]["name"] = shop_name
    for field in ("total_minor", "tax_minor", "net_minor", "subtotal_minor"):
        if field in event:
            event[field] = amount
    try:
        payload = registry().encode(f"{topic}-value", event)
    except ContractError as err:  # the publisher refuses it before it reaches Kafka
        assert err.reason == "schema_mismatch"
        return
    result = outcome(topic, payload)
    if isinstance(result, list):
        check_commands(result)
        if amount < 0 and topic in {"order.placed", "invoice.issued"}:
            raise AssertionError("a negative amount was accepted")


def test_payloads_up_to_the_brokers_limit_are_refused_or_routed_and_always_fit_a_dead_letter():
    """0.9x, 1x, 1.5x and 4x the payload limit and the local broker's own limit (2 MiB):
    over the limit is `oversized`, under it is a reasoned rejection; every dead letter the
    policy would write stays within the limit."""
    import os

    from processors.validation import payload_size
    from streams.dlq import bounded
    limit = 256 * 1024
    for size in (int(limit * 0.9), limit, int(limit * 1.5), limit * 4, 2 * 1024 * 1024 - 512):
        payload = b"\x00\x00\x00\x00\x65" + os.urandom(size - 5)
        try:
            payload_size(payload, limit)
            reason = outcome("order.placed", payload)
            assert size <= limit and reason in REASONS | {r for r in RejectReason}
        except RejectedInput as err:
            assert size > limit and err.reason is RejectReason.OVERSIZED
        key, value, headers = bounded(os.urandom(5000), payload, limit)
        assert len(value) <= limit and len(key) <= 1024
        assert (size > limit) == any(name == "flowmail.truncated" for name, _ in headers)
