"""The live dashboard's figures: OpenSearch aggregations over the last minutes of delivery
events, shaped together with consumer lag, raised alerts and breaker states into one
snapshot (flowmail/dashboard.py serves it, and streams it to the page every few seconds)."""

from __future__ import annotations

from typing import Any

PERCENTS = (50.0, 95.0, 99.0)
FINAL = ("sent", "failed", "suppressed", "skipped_duplicate", "ambiguous", "bounced")


def _since(now_ms: int, minutes: int) -> dict[str, Any]:
    return {"range": {"@timestamp": {"gte": now_ms - minutes * 60_000, "lte": now_ms,
                                     "format": "epoch_millis"}}}


def query(now_ms: int, minutes: int = 15) -> dict[str, Any]:
    statuses = {"status": {"terms": {"field": "status", "size": 20}}}
    return {"size": 0, "query": {"bool": {"filter": [_since(now_ms, minutes)]}}, "aggs": {
        "priority": {"terms": {"field": "priority", "size": 5}, "aggs": statuses},
        "minutes": {"filter": {"term": {"status": "sent"}}, "aggs": {"at": {
            "date_histogram": {"field": "@timestamp", "fixed_interval": "1m",
                               "extended_bounds": {"min": now_ms - minutes * 60_000,
                                                   "max": now_ms}},
            "aggs": {"priority": {"terms": {"field": "priority", "size": 5}}}}}},
        "latency": {"filter": {"term": {"status": "sent"}}, "aggs": {"priority": {
            "terms": {"field": "priority", "size": 5}, "aggs": {"ms": {"percentiles": {
                "field": "latency_ms", "percents": list(PERCENTS)}}}}}},
        "provider": {"terms": {"field": "provider", "size": 20}, "aggs": statuses},
    }}


def campaigns_query(now_ms: int, hours: int = 24) -> dict[str, Any]:
    """Campaigns with mail in the last day, per shop (campaign ids are the shops' own): each
    email's outcome, by status; the most recent first (not the largest: a small campaign
    going out now must not be crowded out by the day's big ones)."""
    return {"size": 0, "query": {"bool": {"filter": [
        _since(now_ms, hours * 60), {"exists": {"field": "campaign_id"}},
        {"terms": {"status": list(FINAL)}}]}},
        "aggs": {"shop": {"terms": {"field": "shop_id", "size": 50}, "aggs": {
            "campaign": {"terms": {"field": "campaign_id", "size": 20,
                                   "order": {"last": "desc"}}, "aggs": {
                "status": {"terms": {"field": "status", "size": 20}},
                "last": {"max": {"field": "@timestamp"}}}}}}}}


def campaign_rows(campaigns: dict[str, Any], runs: dict[tuple[str, str], dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    """The outcomes of each (shop, campaign) next to its runs' progress (phase, targeted,
    handed out, winner); a campaign that has not sent yet (scheduled) shows from its runs."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for shop in campaigns.get("aggregations", {}).get("shop", {}).get("buckets", []):
        for bucket in shop.get("campaign", {}).get("buckets", []):
            counts = _counts(bucket)
            done = sum(counts.values())
            rows[(shop["key"], bucket["key"])] = {
                "campaign_id": bucket["key"], "shop_id": shop["key"], "emails": done,
                "sent": counts.get("sent", 0), "failed": counts.get("failed", 0),
                "suppressed": counts.get("suppressed", 0),
                "other": done - counts.get("sent", 0) - counts.get("failed", 0)
                - counts.get("suppressed", 0),
                "last_at": int(bucket.get("last", {}).get("value") or 0)}
    empty = {"emails": 0, "sent": 0, "failed": 0, "suppressed": 0, "other": 0, "last_at": 0}
    for (shop_id, campaign_id), progress in runs.items():
        if (shop_id, campaign_id) not in rows and progress["phase"] in ("done", "cancelled"):
            continue  # finished, and nothing of it in the last day
        row = rows.setdefault((shop_id, campaign_id), {
            "campaign_id": campaign_id, "shop_id": shop_id, **empty})
        row.update({"phase": progress["phase"] + (" (paused)" if progress["paused"] else ""),
                    "targeted": progress["targeted"] if progress["counted"] else None,
                    "queued": progress["queued"], "winner": progress["winner"]})
    return sorted(rows.values(), key=lambda r: (-r["last_at"], r["shop_id"], r["campaign_id"]))


def _counts(bucket: dict[str, Any]) -> dict[str, int]:
    return {b["key"]: b["doc_count"] for b in bucket.get("status", {}).get("buckets", [])}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def snapshot(answer: dict[str, Any], campaigns: dict[str, Any], lag: dict[str, int],
             alerts: list[dict[str, Any]], breakers: dict[str, bool | None],
             providers_out: list[str], now_ms: int, minutes: int = 15,
             runs: dict[tuple[str, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """What the page shows. ``lag``: records behind per consumer group; ``breakers``: open
    (True), closed (False) or unknown (None) per provider, from the workers' metrics;
    ``runs``: each campaign's progress (processors/campaign_runs.progress)."""
    aggs = answer.get("aggregations") or {}
    priorities = {}
    for bucket in aggs.get("priority", {}).get("buckets", []):
        counts = _counts(bucket)
        priorities[bucket["key"]] = {"sent": counts.get("sent", 0),
                                     "failed": counts.get("failed", 0),
                                     "deferred": counts.get("deferred", 0),
                                     "per_minute": round(counts.get("sent", 0) / minutes, 1)}
    series = [{"at": b["key"], **{p["key"]: p["doc_count"]
                                  for p in b.get("priority", {}).get("buckets", [])}}
              for b in aggs.get("minutes", {}).get("at", {}).get("buckets", [])]
    latency = {}
    for bucket in aggs.get("latency", {}).get("priority", {}).get("buckets", []):
        values = bucket["ms"]["values"]
        latency[bucket["key"]] = {f"p{int(p)}": round(values.get(str(p)) or 0.0, 1)
                                  for p in PERCENTS}
    providers = []
    for bucket in aggs.get("provider", {}).get("buckets", []):
        counts = _counts(bucket)
        sent, failed = counts.get("sent", 0), counts.get("failed", 0) + counts.get(
            "deferred", 0)
        providers.append({"name": bucket["key"], "sent": sent, "failed": failed,
                          "failure_rate": _rate(failed, sent + failed),
                          "breaker_open": breakers.get(bucket["key"]),
                          "out": bucket["key"] in providers_out})
    return {"at": now_ms, "minutes": minutes, "priorities": priorities, "series": series,
            "latency": latency, "providers": providers, "lag": lag,
            "lag_total": sum(lag.values()),
            "alerts": [{"rule": a.get("rule"), "key": a.get("key"), "rate": a.get("rate"),
                        "threshold": a.get("threshold"), "since": a.get("at")}
                       for a in alerts],
            "campaigns": campaign_rows(campaigns, runs or {}),
            "sent_total": sum(p["sent"] for p in priorities.values())}


def raised(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The anomaly alerts still raised, from email.alerts in order."""
    current: dict[str, dict[str, Any]] = {}
    for alert in alerts:
        if alert.get("type") != "anomaly":
            continue
        if alert.get("state") == "raised":
            current[alert["id"]] = alert
        else:
            current.pop(alert.get("id"), None)
    return list(current.values())


def breaker_states(metrics_text: str) -> dict[str, bool]:
    """``flowmail_provider_breaker_open{provider="x"} 1.0`` lines of a worker's /metrics."""
    states: dict[str, bool] = {}
    for line in metrics_text.splitlines():
        if line.startswith('flowmail_provider_breaker_open{provider="'):
            name = line.split('"')[1]
            states[name] = states.get(name, False) or line.rsplit(" ", 1)[-1] != "0.0"
    return states
