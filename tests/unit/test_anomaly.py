"""Anomaly rules: counted per batch, summed over the window, raised once, cleared once; a
small sample is no alarm."""

from __future__ import annotations

import json

from core.vocab import DeliveryStatus
from processors.anomaly import MINUTE_MS, Windows, count, default_rules, evaluate, message
from processors.commands import DeliveryEvent

NOW = 1_800_000_000_000
RULES = default_rules(min_sample=100)


def event(status: str, provider: str = "sendgrid", domain: str = "example.org",
          at: int = NOW) -> DeliveryEvent:
    return DeliveryEvent(event_id="e", status=DeliveryStatus(status), idempotency_key="k",
                         command_id="", email_type="order_confirmation", priority="transactional",
                         locale="en", shop_id="shop-1", recipient_key="r",
                         recipient_domain=domain, attempt=1, source_event_id="",
                         occurred_at=at, provider=provider)


def run(windows, raised, events, now=NOW):
    partial = json.loads(json.dumps(count(events, RULES)))  # as it travels through Kafka
    windows.add(partial)
    return evaluate(RULES, windows, raised, now)


def test_a_bounce_rate_over_five_percent_is_raised_once_and_cleared_once():
    windows, raised = Windows(3_600_000), {}
    assert run(windows, raised, [event("sent")] * 100) == []
    [alert] = [a for a in run(windows, raised, [event("bounced")] * 6)
               if a["dimension"] == "provider"]
    assert (alert["state"], alert["rule"], alert["key"], alert["sample"]) == (
        "raised", "bounce_rate", "sendgrid", 100)
    assert "RAISED: bounce rate of provider sendgrid is 6.00%" in message(alert)
    assert run(windows, raised, [event("bounced")] * 3) == []  # still high: nothing again
    assert run(windows, raised, [event("sent")] * 50) == []    # 9/150 = 6 %: still raised
    cleared = [a for a in run(windows, raised, [event("sent")] * 100)
               if a["id"] == alert["id"]]                      # 9/250 = 3.6 % <= 4 %
    assert [a["state"] for a in cleared] == ["cleared"]
    assert run(windows, raised, [event("sent")] * 10) == []


def test_one_bounce_in_two_emails_is_no_alarm():
    windows, raised = Windows(3_600_000), {}
    assert run(windows, raised, [event("sent"), event("sent"), event("bounced")]) == []


def test_provider_failures_count_deferrals_against_every_attempt():
    windows, raised = Windows(3_600_000), {}
    alerts = run(windows, raised, [event("sent", "mailgun")] * 80
                 + [event("failed", "mailgun")] * 10 + [event("deferred", "mailgun")] * 10)
    assert [(a["rule"], a["key"], a["rate"]) for a in alerts] == [
        ("provider_failure_rate", "mailgun", 0.2)]


def test_an_alert_whose_mail_left_the_window_is_cleared():
    windows, raised = Windows(10 * MINUTE_MS), {}
    run(windows, raised, [event("sent", at=NOW)] * 100 + [event("bounced", at=NOW)] * 20)
    assert raised
    later = NOW + 30 * MINUTE_MS
    alerts = evaluate(RULES, windows, raised, later)
    assert {a["state"] for a in alerts} == {"cleared"} and not raised
    assert "no more mail" in message(alerts[0])


def test_counts_are_by_minute_and_ignore_statuses_no_rule_reads():
    partial = count([event("sent", at=NOW), event("opened"), event("sent", at=NOW + MINUTE_MS)],
                    RULES)
    minutes = partial["provider"]["sendgrid"]
    assert sorted(minutes) == [str(NOW // MINUTE_MS), str(NOW // MINUTE_MS + 1)]
    assert all(set(m) == {"sent"} for m in minutes.values())
