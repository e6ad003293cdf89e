"""Erasure: requests checked, receipts without personal data, every topic that can hold an
address in clear within the bound, provider texts without addresses."""

import datetime as dt
import json

import pytest

from core.settings import load_settings
from processors.erasure import receipt, validate_request
from processors.errors import RejectedInput
from processors.keys import without_addresses
from streams.topics import DELIVERY, DLQ, PROFILES, SUPPRESSIONS, ErasureLimits, topic_specs

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
REQUEST = {"event_id": "e-1", "occurred_at": T0, "shop_id": "shop-042", "user_id": "cus-1",
           "email": "anna@example.org", "requested_by": "customer"}


@pytest.mark.parametrize(("field", "value"), [("shop_id", ""), ("email", "anna(at)x"),
                                              ("email", "a@b.example\r\nBcc: x@y.example"),
                                              ("requested_by", "a neighbour")])
def test_bad_requests_are_refused(field, value):
    with pytest.raises(RejectedInput):
        validate_request({**REQUEST, field: value})


def test_the_receipt_names_no_person_and_says_when_it_is_complete():
    done = receipt(REQUEST, 1, 7, 3600, T0 + dt.timedelta(seconds=2))
    text = json.dumps(done, default=str)
    assert "anna" not in text and "cus-1" not in text
    assert done["complete_by"] == T0 + dt.timedelta(hours=1)
    assert (done["profiles_deleted"], done["analytics_deleted"]) == (1, 7)


@pytest.mark.parametrize("bound_s", [60, 3600, 30 * 24 * 3600])
def test_every_topic_with_addresses_in_clear_is_gone_within_the_bound(bound_s):
    settings = load_settings({"FLOWMAIL_ERASURE_BOUND_S": str(bound_s)})
    limits = ErasureLimits.of(settings)
    specs = {spec.name: spec for spec in topic_specs(settings)}
    personal = [s for s in specs.values() if s.extra_config.get("segment.ms")]
    assert {DLQ, PROFILES, "user.created", "order.placed", "email.marketing",
            "email.retry.critical", "privacy.erasure_requested"} <= {s.name for s in personal}
    for spec in personal:
        config = spec.config()
        segment = int(config["segment.ms"])
        if spec.compacted:
            worst = segment + int(config["max.compaction.lag.ms"])
        else:
            worst = int(config["retention.ms"]) + segment
        assert worst <= limits.bound_ms, (spec.name, worst)
    # addresses never reach these in clear: they carry recipient keys (HMACs)
    assert not specs[DELIVERY].extra_config and not specs[SUPPRESSIONS].extra_config


def test_provider_texts_lose_their_addresses():
    assert without_addresses("550 5.1.1 <Anna.B+x@mail.example.org>: user unknown") == (
        "550 5.1.1 <<address>>: user unknown")
    assert without_addresses("rejected anna@example.org, bob@example.net") == (
        "rejected <address>, <address>")
    assert without_addresses("421 try again later") == "421 try again later"
    assert without_addresses(None) is None
