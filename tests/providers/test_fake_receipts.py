"""The benchmark reads a fake API's receipts as they grow, fetching only the new ones
(bench/sinks.FakeApiSink, flowmail/fakes/faults.py), against the real fake process."""

from __future__ import annotations

import pytest
import requests

from bench.sinks import FakeApiSink


def _send(fake: FakeApiSink, keys: list[str]) -> None:
    """One v3 mail/send request a key, as SendGrid takes them."""
    for key in keys:
        requests.post(f"{fake.url}/v3/mail/send", timeout=10, headers={
            "Authorization": f"Bearer {FakeApiSink.API_KEY}"}, json={
            "from": {"email": "shop@example.org"}, "subject": "Receipt",
            "personalizations": [{"to": [{"email": "kim@example.org"}]}],
            "headers": {"X-Flowmail-Idempotency-Key": key,
                        "X-Flowmail-Email-Type": "order_confirmation"},
            "content": [{"type": "text/plain", "value": "t"}]}).raise_for_status()


@pytest.fixture()
def fake():
    sink = FakeApiSink.start("sendgrid")
    yield sink
    sink.stop()


def test_receipts_are_read_incrementally_and_start_over_after_a_reset(fake):
    _send(fake, ["k1", "k2"])
    assert fake.keys() == ["k1", "k2"]
    _send(fake, ["k3"])
    assert fake.keys() == ["k1", "k2", "k3"]
    assert fake._read == 3  # each receipt fetched once, not once a call
    page = requests.get(f"{fake.url}/_fake/receipts", params={"since": 2}, timeout=10).json()
    assert [key for key, *_ in page["receipts"]] == ["k3"] and page["total"] == 3

    # fresh keys: each receipt once, whatever receipts() read in between
    assert fake.fresh_keys() == ["k1", "k2", "k3"]
    _send(fake, ["k5"])
    assert fake.keys()[-1] == "k5" and fake.fresh_keys() == ["k5"]
    assert fake.fresh_keys() == []

    # another reader's reset empties the fake: this reader starts over, not at 4
    requests.post(f"{fake.url}/_fake/reset", timeout=10).raise_for_status()
    _send(fake, ["k4"])
    assert fake.keys() == ["k4"] and fake.fresh_keys() == ["k4"]
    fake.reset()
    assert fake.keys() == [] and fake.fresh_keys() == []


@pytest.mark.parametrize("since", ["x", "1.5", ""])
def test_a_since_that_is_not_a_whole_number_is_refused(fake, since):
    answer = requests.get(f"{fake.url}/_fake/receipts", params={"since": since}, timeout=10)
    assert answer.status_code == 400 and "since" in answer.text
