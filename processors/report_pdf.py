"""The daily report's PDF (processors/daily_report.py's figures): the same sections as the
email, with bar charts, on the page writer the invoices use (processors/pdf.py)."""

from __future__ import annotations

from typing import Any

from reportlab.lib.units import mm

from processors.daily_report import percent
from processors.pdf import Formatters, PageWriter, choose_font

BRAND = (0.15, 0.39, 0.92)
WARN = (0.86, 0.15, 0.15)


def _table(writer: PageWriter, title: str, header: list[str], rows: list[list[str]]) -> None:
    writer.gap(5 * mm)
    writer.set_size(12)
    writer.line(title, height=7 * mm)
    writer.set_size(9)
    writer.table(header, rows or [["–", "", "", ""]])


def report_pdf(data: dict[str, Any], locale: str, fmt: Formatters) -> bytes:
    figures = data["figures"]  # operator mail is English, like flowmail's logs
    total = figures.get("total", {})
    texts = [row["key"] for part in ("by_type", "providers", "campaigns", "domains")
             for row in figures.get(part, [])]
    writer = PageWriter(*choose_font(locale, texts))
    writer.set_size(16)
    writer.line(f"flowmail · Daily report {data['report_date']} (UTC)", height=8 * mm)
    writer.set_size(10)
    writer.line(f"Emails sent: {fmt.number(figures.get('emails', 0))} · "
                f"Delivered {percent(total.get('delivery_rate'))} · "
                f"Bounced {percent(total.get('bounce_rate'))} · "
                f"Opened {percent(total.get('open_rate'))} · "
                f"Clicked {percent(total.get('click_rate'))}")
    by_type = figures.get("by_type", [])
    most = max((row["sent"] for row in by_type), default=0) or 1
    writer.gap(4 * mm)
    writer.bars([(row["key"], row["sent"] / most, fmt.number(row["sent"])) for row in by_type],
                BRAND)
    _table(writer, "By email type", ["Email type", "Sent", "Bounced", "Opened"],
           [[r["key"], fmt.number(r["sent"]), percent(r["bounce_rate"]), percent(r["open_rate"])]
            for r in by_type])
    _table(writer, "Providers", ["Provider", "Sent", "Failures", "Cost"],
           [[r["key"], fmt.number(r["sent"]), percent(r["failure_rate"]), f"{r['cost']:.2f}"]
            for r in figures.get("providers", [])]
           + [["Cost of the day", "", "", f"{figures.get('cost_total', 0):.2f}"]])
    _table(writer, "Campaigns", ["Campaign / variant", "Sent", "Opened",
                                    "Clicked"],
           [[r["key"], fmt.number(r["sent"]), percent(r["open_rate"]), percent(r["click_rate"])]
            for r in figures.get("campaigns", [])])
    _table(writer, "Slowest priorities (publish to accept)",
           ["Priority", "p50 ms", "p95 ms", "p99 ms"],
           [[r["priority"], f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}", f"{r['p99_ms']:.0f}"]
            for r in figures.get("latency", [])])
    anomalies = figures.get("anomalies", [])
    writer.gap(5 * mm)
    writer.set_size(12)
    writer.line("Anomalies", height=7 * mm)
    writer.set_size(9)
    writer.bars([(f"{a['rule']} {a['key']}", min(1.0, (a.get("rate") or 0) / (
        2 * (a.get("threshold") or 1))), percent(a.get("rate"))) for a in anomalies], WARN)
    if not anomalies:
        writer.line("none")
    return writer.finish()
