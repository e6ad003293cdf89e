"""``flowmail report daily``: the operators' report of one day, printed, written as the email
(HTML, PDF) exactly as the operators get it, or sent to them through flowmail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from core.catalogue import EmailType
from core.settings import Settings
from processors.daily_report import percent
from processors.operator_events import REPORT_TOPIC, operator_shop_of, report_event
from processors.rendering import RenderedEmail, Renderer
from processors.routing import route


def rendered(settings: Settings, figures: dict[str, Any]) -> RenderedEmail:
    """The email the operators get: routed and rendered as the senders do."""
    event = report_event(settings.app_id, figures, ["operators@flowmail.example"],
                         operator_shop_of(settings), dt.datetime.now(dt.UTC))
    now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    [command] = route(REPORT_TOPIC, event, now, now)
    return Renderer(pdf_types=frozenset({EmailType.DAILY_REPORT})).render(command)


def text(figures: dict[str, Any]) -> str:
    total = figures.get("total", {})
    lines = [f"Daily report of {figures['date']} (UTC): {figures['emails']} emails sent",
             f"delivered {percent(total.get('delivery_rate'))}, bounced "
             f"{percent(total.get('bounce_rate'))}, opened {percent(total.get('open_rate'))}, "
             f"clicked {percent(total.get('click_rate'))}", "", "by email type:"]
    lines += [f"  {r['key']:24} {r['sent']:>8}  bounced {percent(r['bounce_rate'])}"
              for r in figures.get("by_type", [])]
    lines += ["providers:"] + [
        f"  {r['key']:24} {r['sent']:>8}  failures {percent(r['failure_rate'])}  cost {r['cost']}"
        for r in figures.get("providers", [])]
    lines += [f"  cost of the day: {figures.get('cost_total', 0)}", "campaigns:"] + [
        f"  {r['key']:24} {r['sent']:>8}  opened {percent(r['open_rate'])}  clicked "
        f"{percent(r['click_rate'])}" for r in figures.get("campaigns", [])]
    lines += ["latency, publish to accept (ms):"] + [
        f"  {r['priority']:24} p50 {r['p50_ms']}  p95 {r['p95_ms']}  p99 {r['p99_ms']}"
        for r in figures.get("latency", [])]
    lines += ["anomalies:"] + ([f"  {a['rule']} {a['key']}: {percent(a.get('rate'))}"
                                for a in figures.get("anomalies", [])] or ["  none"])
    return "\n".join(lines)
