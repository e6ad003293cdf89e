"""``flowmail report deliverability``: the report of processors/deliverability.py, read from
OpenSearch, printed as tables, as JSON, or written as an HTML page with bar plots."""

from __future__ import annotations

import datetime as dt
import html
import re
import time
from typing import Any

from core.opensearch_client import search_events
from core.settings import Settings
from processors.deliverability import DIMENSIONS, query, rows

TITLES = {"all": "All mail", "provider": "By provider", "recipient_domain": "By recipient domain",
          "email_type": "By email type", "campaign": "By campaign and variant"}
_DURATION = re.compile(r"(\d+)([mhdw])")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


class ReportError(ValueError):
    """A --since/--until that cannot be read, or OpenSearch answering with an error."""


def moment(text: str, now_ms: int) -> int:
    """``7d``, ``24h``, ``30m``, ``2w`` ago, ``now``, or an ISO date/time (UTC if no zone)."""
    text = text.strip()
    if text == "now":
        return now_ms
    duration = _DURATION.fullmatch(text)
    if duration:
        return now_ms - int(duration.group(1)) * _UNIT_S[duration.group(2)] * 1000
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as err:
        raise ReportError(f"{text!r}: use 7d, 24h, 30m, now or an ISO date") from err
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def deliverability(settings: Settings, since: str, until: str = "now",
                   shop_id: str | None = None) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    since_ms, until_ms = moment(since, now_ms), moment(until, now_ms)
    if since_ms >= until_ms:
        raise ReportError("--since must be before --until")
    answer = search_events(settings, query(since_ms, until_ms, shop_id), timeout=60)
    if answer.status_code != 200:
        raise ReportError(f"OpenSearch answered {answer.status_code}: {answer.text[:300]}")
    found = rows(answer.json())
    return {"since": _iso(since_ms), "until": _iso(until_ms), "shop_id": shop_id,
            "index": f"{settings.index_prefix}-*",
            "tables": {name: [row.as_dict() for row in table] for name, table in found.items()}}


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


COLUMNS = ("sent", "delivered", "bounced", "complained", "opened", "clicked")


def text(report: dict[str, Any]) -> str:
    lines = [f"deliverability {report['since']} .. {report['until']}"
             + (f", shop {report['shop_id']}" if report["shop_id"] else "")]
    for name in ("all", *DIMENSIONS):
        table = report["tables"][name]
        lines += ["", TITLES[name]]
        if not table:
            lines.append("  (nothing in this window)")
            continue
        lines.append(f"  {'':32} {'sent':>8} {'deliv.':>7} {'bounce':>7} {'compl.':>7} "
                     f"{'open':>7} {'click':>7}")
        for row in table:
            lines.append(f"  {row['key'][:32]:32} {row['sent']:>8} "
                         + " ".join(f"{_percent(row[f'{c}_rate']):>7}" for c in COLUMNS[1:]))
    return "\n".join(lines)


def page(report: dict[str, Any]) -> str:
    """One HTML page: a table per dimension, each rate drawn as a bar (no script, no
    external asset: it opens from a file or an email)."""
    def bar(value: float | None, colour: str) -> str:
        if value is None:
            return "-"
        width = max(1, round(min(value, 1) * 120))
        return (f'<span style="display:inline-block;width:{width}px;height:9px;'
                f'background:{colour}"></span> {value:.1%}')

    colours = {"delivered": "#16a34a", "bounced": "#dc2626", "complained": "#9333ea",
               "opened": "#2563eb", "clicked": "#0891b2"}
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             "<title>flowmail deliverability</title><style>body{font:14px system-ui;"
             "margin:24px}table{border-collapse:collapse;margin-bottom:24px}td,th{padding:"
             "4px 10px;border-bottom:1px solid #e5e7eb;text-align:left}</style></head><body>",
             f"<h1>Deliverability</h1><p>{html.escape(report['since'])} to "
             f"{html.escape(report['until'])}"
             + (f", shop {html.escape(report['shop_id'])}" if report["shop_id"] else "")
             + "</p>"]
    for name in ("all", *DIMENSIONS):
        parts.append(f"<h2>{TITLES[name]}</h2>")
        table = report["tables"][name]
        if not table:
            parts.append("<p>Nothing in this window.</p>")
            continue
        parts.append("<table><tr><th></th><th>sent</th>"
                     + "".join(f"<th>{c}</th>" for c in COLUMNS[1:]) + "</tr>")
        for row in table:
            parts.append(f"<tr><td>{html.escape(row['key'])}</td><td>{row['sent']}</td>"
                         + "".join(f"<td>{bar(row[f'{c}_rate'], colours[c])}</td>"
                                   for c in COLUMNS[1:]) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)

