"""The deliverability report as an OpenSearch aggregation and what it means in rates.

Per provider, recipient domain, email type and campaign variant: sent (a provider accepted
it), delivered, bounced, complained (events providers report back), and unique opens and
clicks by people (``agent: human``; privacy prefetch and link scanners are counted apart).
Rates are of the emails sent. Opens and clicks are flowmail's own tracking (provider
``flowmail``), so the per-provider rows show them only for the provider-reported events.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DIMENSIONS = {"provider": "provider", "recipient_domain": "recipient_domain",
              "email_type": "email_type", "campaign": "campaign_id"}
COUNTED = ("sent", "delivered", "bounced", "complained", "unsubscribed", "failed",
           "suppressed")


def _people(status: str) -> dict[str, Any]:
    return {"filter": {"bool": {"filter": [{"term": {"status": status}},
                                           {"term": {"agent": "human"}}]}},
            "aggs": {"emails": {"cardinality": {"field": "idempotency_key"}}}}


def _measures() -> dict[str, Any]:
    return {"status": {"terms": {"field": "status", "size": 20}},
            "opened": _people("opened"), "clicked": _people("clicked"),
            "machine_opens": {"filter": {"bool": {
                "filter": [{"term": {"status": "opened"}}],
                "must_not": [{"term": {"agent": "human"}}]}}}}


def query(since_ms: int, until_ms: int, shop_id: str | None = None,
          top: int = 25) -> dict[str, Any]:
    filters: list[dict[str, Any]] = [{"range": {"@timestamp": {
        "gte": since_ms, "lt": until_ms, "format": "epoch_millis"}}}]
    if shop_id:
        filters.append({"term": {"shop_id": shop_id}})
    aggs: dict[str, Any] = {"all": {"filter": {"match_all": {}}, "aggs": _measures()}}
    for name, field in DIMENSIONS.items():
        inner = _measures()
        if name == "campaign":  # a campaign's variants side by side (the A/B question)
            inner = {"variant": {"terms": {"field": "variant", "size": 10},
                                 "aggs": _measures()}}
        aggs[name] = {"terms": {"field": field, "size": top}, "aggs": inner}
    return {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": filters}},
            "aggs": aggs}


@dataclass(frozen=True)
class Row:
    key: str
    sent: int
    delivered: int
    bounced: int
    complained: int
    unsubscribed: int
    failed: int
    suppressed: int
    opened: int          # emails opened by a person (unique)
    clicked: int         # emails a person clicked in (unique)
    machine_opens: int   # privacy prefetch and scanners, not counted as opens

    def rate(self, count: int) -> float | None:
        return round(count / self.sent, 4) if self.sent else None

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        for name in ("delivered", "bounced", "complained", "opened", "clicked"):
            values[f"{name}_rate"] = self.rate(getattr(self, name))
        return values


def _row(key: str, bucket: dict[str, Any]) -> Row:
    counts = {b["key"]: b["doc_count"] for b in bucket["status"]["buckets"]}
    return Row(key=key, **{name: counts.get(name, 0) for name in COUNTED},
               opened=bucket["opened"]["emails"]["value"],
               clicked=bucket["clicked"]["emails"]["value"],
               machine_opens=bucket["machine_opens"]["doc_count"])


def rows(answer: dict[str, Any]) -> dict[str, list[Row]]:
    """The aggregation answer as rows per dimension (``all``: one row for everything)."""
    aggregations = answer.get("aggregations") or {}
    if not aggregations:
        return {"all": [], **{name: [] for name in DIMENSIONS}}
    result = {"all": [_row("all", aggregations["all"])]}
    for name in DIMENSIONS:
        found = []
        for bucket in aggregations[name]["buckets"]:
            if name == "campaign":
                found += [_row(f"{bucket['key']} / {variant['key']}", variant)
                          for variant in bucket["variant"]["buckets"]]
            else:
                found.append(_row(str(bucket["key"]), bucket))
        result[name] = found
    return result


def variants_query(shop_id: str, campaign_id: str, since_ms: int) -> dict[str, Any]:
    """One campaign's variants side by side since its run began (the A/B decision)."""
    return {"size": 0, "query": {"bool": {"filter": [
        {"term": {"shop_id": shop_id}}, {"term": {"campaign_id": campaign_id}},
        {"range": {"@timestamp": {"gte": since_ms, "format": "epoch_millis"}}}]}},
        "aggs": {"variant": {"terms": {"field": "variant", "size": 50}, "aggs": _measures()}}}


def variant_rows(answer: dict[str, Any]) -> dict[str, Row]:
    buckets = (answer.get("aggregations") or {}).get("variant", {}).get("buckets", [])
    return {str(b["key"]): _row(str(b["key"]), b) for b in buckets}
