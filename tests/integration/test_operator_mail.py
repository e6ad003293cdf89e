"""flowmail's own mail to its operators, on the real stack and through the session worker: the
daily report (scheduled by the worker, and by hand with the day's right numbers, sent once
however often it is published) and anomaly alerts by email."""

from __future__ import annotations

import datetime as dt
import io

import pypdf
import requests

from flowmail.samples import order_placed
from processors.daily_report import day_bounds
from processors.keys import idempotency_key
from processors.operator_events import operator_shop, report_event
from streams.daily_report import gather, publish
from tests.integration.conftest import OPERATOR_REPORTS
from tests.integration.helpers import outbox, poll, search
from tests.integration.test_pipeline import INDEX
from tests.integration.test_pipeline import publish as publish_events


def _report_key(settings, day: dt.date, address: str) -> str:
    shop = operator_shop("flowmail", "", settings.mail_from)
    event = report_event(settings.app_id, {"date": day.isoformat()}, [address], shop,
                         dt.datetime.now(dt.UTC))
    return idempotency_key(event["event_id"], "daily_report", address)


def _pdf_text(message) -> str:
    [part] = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(part.get_content()))
    return "".join(page.extract_text() for page in reader.pages)


def test_the_worker_sends_yesterdays_report_on_its_schedule(worker, settings):
    """FLOWMAIL_DAILY_REPORT_AT=00:00 in the session: the worker sends yesterday's report at
    its first check after start."""
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    key = _report_key(settings, yesterday, OPERATOR_REPORTS)
    [message] = poll(lambda: outbox(settings.outbox_dir).get(key), "yesterday's report",
                     timeout_s=180)
    assert yesterday.isoformat() in message["Subject"]
    assert f"Daily report {yesterday.isoformat()}" in _pdf_text(message)


def _sent_today(settings) -> int:
    since, until = day_bounds(dt.datetime.now(dt.UTC).date())
    requests.post(f"{settings.opensearch_url}/{INDEX}/_refresh", timeout=10)
    answer = requests.post(f"{settings.opensearch_url}/{INDEX}/_count", json={"query": {
        "bool": {"filter": [{"term": {"status": "sent"}}, {"range": {"@timestamp": {
            "gte": since, "lt": until, "format": "epoch_millis"}}}]}}}, timeout=10)
    return int(answer.json()["count"])


def test_a_report_by_hand_has_the_days_numbers_and_is_sent_once(worker, settings):
    events = [order_placed(900 + i) for i in range(3)]
    publish_events(settings, events)
    poll(lambda: all(search(settings.opensearch_url, INDEX, {"bool": {"filter": [
        {"term": {"source_event_id": e["event_id"]}}, {"term": {"status": "sent"}}]}})
        for e in events), "the three confirmations indexed")
    today = dt.datetime.now(dt.UTC).date()
    # the report and an independent count of the same index agree (other tests keep sending:
    # take both while nothing else is indexed in between, or try again)
    figures, counted = poll(lambda: (lambda f, c: (f, c) if f["emails"] == c else None)(
        gather(settings, today), _sent_today(settings)), "the report to match the index",
        every_s=1.0)
    assert figures["emails"] == counted >= 3
    types = {row["key"]: row["sent"] for row in figures["by_type"]}
    assert types["order_confirmation"] >= 3
    assert sum(types.values()) == counted
    address = "lead@ops.flowmail.example"
    key = _report_key(settings, today, address)
    publish(settings, figures, [address])
    [message] = poll(lambda: outbox(settings.outbox_dir).get(key), "today's report")
    assert f"{figures['emails']} emails" in message["Subject"]
    pdf = _pdf_text(message)
    assert f"Daily report {today.isoformat()}" in pdf and "order_confirmation" in pdf
    # published again (a restart, a second process, a second --send): nobody gets it twice
    publish(settings, figures, [address])
    poll(lambda: search(settings.opensearch_url, INDEX, {"bool": {"filter": [
        {"term": {"idempotency_key": key}}, {"term": {"status": "skipped_duplicate"}}]}}),
        "the second report skipped by the ledger")
    assert len(outbox(settings.outbox_dir)[key]) == 1
