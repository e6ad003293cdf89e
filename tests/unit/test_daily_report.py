"""Operator mail: the daily report's figures, its schedule, the operator events and routes,
and the email with its PDF as the operators get it."""

from __future__ import annotations

import datetime as dt
import io
import json

import pypdf
import pytest

from core.catalogue import EmailType
from core.settings import Settings
from core.vocab import Priority
from flowmail.daily_report import rendered
from processors.daily_report import figures, query
from processors.errors import RejectedInput
from processors.operator_events import alert_event, operator_shop, report_due, report_event
from processors.routing import route

DAY = dt.date(2026, 11, 26)
SHOP = operator_shop("flowmail", "", "ShopFlow <no-reply@shopflow.example>")


def _bucket(key: str, sent: int, bounced: int = 0, failed: int = 0, opened: int = 0,
            clicked: int = 0) -> dict:
    statuses = [{"key": k, "doc_count": v} for k, v in
                (("sent", sent), ("bounced", bounced), ("failed", failed)) if v]
    return {"key": key, "doc_count": sent, "status": {"buckets": statuses},
            "opened": {"emails": {"value": opened}}, "clicked": {"emails": {"value": clicked}},
            "machine_opens": {"doc_count": 0}}


ANSWER = {"aggregations": {
    "all": _bucket("all", 1000, bounced=20, failed=10, opened=100, clicked=30),
    "provider": {"buckets": [_bucket("sendgrid", 800, failed=8), _bucket("ses", 200, failed=2)]},
    "recipient_domain": {"buckets": [_bucket("gmail.com", 600, bounced=12)]},
    "email_type": {"buckets": [_bucket("marketing_campaign", 700, opened=90),
                               _bucket("order_confirmation", 300, opened=10)]},
    "campaign": {"buckets": [{"key": "sale", "doc_count": 700, "variant": {"buckets": [
        _bucket("A", 350, opened=60, clicked=20), _bucket("B", 350, opened=30, clicked=10)]}}]},
    "latency": {"priority": {"buckets": [
        {"key": "critical", "doc_count": 5, "ms": {"values": {"50.0": 100, "95.0": 200,
                                                              "99.0": 250}}},
        {"key": "marketing", "doc_count": 700, "ms": {"values": {"50.0": 9000, "95.0": 20000,
                                                                 "99.0": 30000}}}]}},
}}


def test_figures_say_what_the_aggregation_counted():
    alerts = [{"state": "raised", "rule": "bounce_rate", "key": "gmail.com", "rate": 0.08,
               "threshold": 0.05}, {"state": "cleared", "rule": "bounce_rate", "key": "x"}]
    found = figures(DAY, ANSWER, alerts, {"sendgrid": 0.6, "ses": 0.1})
    assert found["date"] == "2026-11-26" and found["emails"] == 1000
    assert found["total"]["bounce_rate"] == 0.02 and found["total"]["open_rate"] == 0.1
    assert [(p["key"], p["cost"], p["failure_rate"]) for p in found["providers"]] == [
        ("sendgrid", 0.48, round(8 / 808, 4)), ("ses", 0.02, round(2 / 202, 4))]
    assert found["cost_total"] == 0.5
    assert [(c["key"], c["click_rate"]) for c in found["campaigns"]] == [
        ("sale / A", round(20 / 350, 4)), ("sale / B", round(10 / 350, 4))]
    assert [row["priority"] for row in found["latency"]] == ["marketing", "critical"]
    assert found["anomalies"] == [{"rule": "bounce_rate", "key": "gmail.com", "rate": 0.08,
                                   "threshold": 0.05, "state": "raised"}]
    assert found["alerts_cleared"] == 1
    assert figures(DAY, {}, [], {})["emails"] == 0  # a day without mail is a report too
    body = query(DAY)
    start = int(dt.datetime(2026, 11, 26, tzinfo=dt.UTC).timestamp() * 1000)
    assert body["query"]["bool"]["filter"][0]["range"]["@timestamp"] == {
        "gte": start, "lt": start + 86_400_000, "format": "epoch_millis"}


def test_the_report_is_due_once_a_day_after_its_time():
    at = dt.datetime(2026, 11, 27, 5, 59, tzinfo=dt.UTC)
    assert report_due(at, "06:00", None) is None
    assert report_due(at + dt.timedelta(minutes=1), "06:00", None) == DAY
    assert report_due(at + dt.timedelta(minutes=1), "06:00", DAY) is None
    assert report_due(at, "00:00", None) == DAY


def test_operator_events_have_ids_of_what_they_are_about():
    alert = {"id": "bounce_rate/recipient_domain/x.test", "rule": "bounce_rate",
             "dimension": "recipient_domain", "key": "x.test", "state": "raised", "rate": 0.08,
             "threshold": 0.05, "sample": 150, "at": 1764201600000}
    raised = alert_event("app", alert, "RAISED", ["a@ops.example"], SHOP)
    assert raised["event_id"] == alert_event("app", alert, "again", ["b@ops.example"], SHOP)[
        "event_id"]
    assert raised["event_id"] != alert_event("app", {**alert, "state": "cleared"}, "x",
                                             ["a@ops.example"], SHOP)["event_id"]
    report = figures(DAY, ANSWER, [], {})
    now = dt.datetime(2026, 11, 27, 6, tzinfo=dt.UTC)
    assert report_event("app", report, ["a@ops.example"], SHOP, now)["event_id"] == report_event(
        "app", report, ["b@ops.example"], SHOP, now + dt.timedelta(hours=1))["event_id"]


def test_operator_mail_routes_to_each_operator_once():
    alert = {"id": "r/d/k", "rule": "r", "dimension": "d", "key": "k", "state": "raised",
             "rate": 0.2, "threshold": 0.1, "sample": 200, "at": 1}
    to = ["a@ops.example", "b@ops.example", "a@ops.example"]
    event = alert_event("app", alert, "RAISED: r", to, SHOP)
    commands = route("ops.alert", event, 1, 2)
    assert [(c.recipient, c.priority, c.email_type) for c in commands] == [
        ("a@ops.example", Priority.CRITICAL, EmailType.OPERATOR_ALERT),
        ("b@ops.example", Priority.CRITICAL, EmailType.OPERATOR_ALERT)]
    with pytest.raises(RejectedInput, match="operators"):
        route("ops.alert", {**event, "operators": []}, 1, 2)
    with pytest.raises(RejectedInput, match=r"header|CR|LF"):
        route("ops.alert", {**event, "summary": "a\r\nBcc: x@evil.test"}, 1, 2)
    report = report_event("app", figures(DAY, ANSWER, [], {}), ["a@ops.example"], SHOP,
                          dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
    [command] = route("ops.daily_report", report, 1, 2)
    assert command.priority is Priority.TRANSACTIONAL
    with pytest.raises(RejectedInput, match="figures_json"):
        route("ops.daily_report", {**report, "figures_json": "{not json"}, 1, 2)
    with pytest.raises(RejectedInput, match="report_date"):
        route("ops.daily_report", {**report, "report_date": "2026-11-25"}, 1, 2)


def test_the_report_email_has_the_figures_and_a_pdf_of_them():
    report = figures(DAY, ANSWER, [{"state": "raised", "rule": "bounce_rate", "key": "gmail.com",
                                    "rate": 0.08, "threshold": 0.05}], {"sendgrid": 0.6})
    email = rendered(Settings(), report)
    assert "2026-11-26" in email.subject and "1000" in email.subject
    assert "sale / A" in email.html and "gmail.com" in email.html and "0.48" in email.html
    [pdf] = email.attachments
    assert pdf.filename == "flowmail-report-2026-11-26.pdf"
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.content)).pages)
    for expected in ("Daily report 2026-11-26", "sendgrid", "sale / A", "marketing_campaign",
                     "bounce_rate gmail.com"):
        assert expected in text
    assert json.loads(json.dumps(report)) == report  # it travels as JSON in the event
