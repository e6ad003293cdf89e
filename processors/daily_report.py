"""The operators' daily report: one UTC day of delivery events as figures.

The case study's list: volume by email type; delivery, bounce, open and click rates; provider
health and cost; campaign results by variant; the day's anomalies; the slowest priorities'
latencies. ``query`` is one OpenSearch aggregation; ``figures`` turns its answer (and the
day's alerts from ``email.alerts``) into the JSON the event carries and the templates and the
PDF read. Pure: the worker (streams/daily_report.py) and ``flowmail report daily`` do the I/O.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from processors.deliverability import query as deliverability_query
from processors.deliverability import rows

PERCENTILES = (50.0, 95.0, 99.0)


def day_bounds(day: dt.date) -> tuple[int, int]:
    """[start, end) of a UTC day in epoch milliseconds."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return (int(start.timestamp() * 1000),
            int((start + dt.timedelta(days=1)).timestamp() * 1000))


def query(day: dt.date) -> dict[str, Any]:
    """The deliverability aggregation over the day, plus latency percentiles per priority
    (of the ``sent`` events: publish to provider accept)."""
    since, until = day_bounds(day)
    body = deliverability_query(since, until, top=50)
    body["aggs"]["latency"] = {
        "filter": {"term": {"status": "sent"}},
        "aggs": {"priority": {"terms": {"field": "priority", "size": 5}, "aggs": {
            "ms": {"percentiles": {"field": "latency_ms", "percents": list(PERCENTILES)}}}}}}
    return body


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _latencies(answer: dict[str, Any]) -> list[dict[str, Any]]:
    buckets = answer.get("aggregations", {}).get("latency", {}).get("priority", {}).get(
        "buckets", [])
    out = []
    for bucket in buckets:
        values = bucket["ms"]["values"]
        out.append({"priority": bucket["key"], "emails": bucket["doc_count"],
                    **{f"p{int(p)}_ms": (round(values.get(str(p)) or values.get(f"{p:.1f}")
                                               or 0.0, 1))
                       for p in PERCENTILES}})
    return sorted(out, key=lambda row: -row["p99_ms"])


def figures(day: dt.date, answer: dict[str, Any], alerts: list[dict[str, Any]],
            costs: dict[str, float]) -> dict[str, Any]:
    """What the report says. ``costs``: price per 1,000 emails by provider."""
    table = rows(answer)
    [total] = table["all"] or [None]
    sent = total.sent if total else 0

    def summary(row: Any) -> dict[str, Any]:
        return {"key": row.key, "sent": row.sent, "delivered": row.delivered,
                "bounced": row.bounced, "complained": row.complained, "failed": row.failed,
                "opened": row.opened, "clicked": row.clicked,
                "delivery_rate": _rate(row.delivered, row.sent),
                "bounce_rate": _rate(row.bounced, row.sent),
                "open_rate": _rate(row.opened, row.sent),
                "click_rate": _rate(row.clicked, row.sent)}

    providers = []
    for row in table["provider"]:
        attempts = row.sent + row.failed
        providers.append({**summary(row), "failure_rate": _rate(row.failed, attempts),
                          "cost": round(row.sent * costs.get(row.key, 0.0) / 1000, 2)})
    raised = [a for a in alerts if a.get("state") == "raised"]
    return {
        "date": day.isoformat(),
        "total": summary(total) if total else {"key": "all", "sent": 0},
        "by_type": [summary(row) for row in table["email_type"]],
        "providers": providers,
        "cost_total": round(sum(p["cost"] for p in providers), 2),
        "campaigns": [summary(row) for row in table["campaign"]],
        "domains": [summary(row) for row in table["recipient_domain"][:10]],
        "latency": _latencies(answer),
        "anomalies": [{"rule": a.get("rule"), "key": a.get("key"), "rate": a.get("rate"),
                       "threshold": a.get("threshold"), "state": a.get("state")}
                      for a in raised],
        "alerts_cleared": sum(1 for a in alerts if a.get("state") == "cleared"),
        "emails": sent,
    }


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"
