"""The dashboard's snapshot (processors/dashboard.py) from aggregation answers."""

from __future__ import annotations

from processors.dashboard import breaker_states, query, raised, snapshot


def _statuses(**counts):
    return {"status": {"buckets": [{"key": k, "doc_count": v} for k, v in counts.items()]}}


ANSWER = {"aggregations": {
    "priority": {"buckets": [{"key": "critical", **_statuses(sent=30)},
                             {"key": "marketing", **_statuses(sent=900, failed=3)}]},
    "minutes": {"at": {"buckets": [{"key": 1, "priority": {"buckets": [
        {"key": "marketing", "doc_count": 60}]}}]}},
    "latency": {"priority": {"buckets": [{"key": "critical", "ms": {"values": {
        "50.0": 120.0, "95.0": 200.0, "99.0": 240.0}}}]}},
    "provider": {"buckets": [{"key": "smtp", **_statuses(sent=930, failed=3, deferred=7)}]},
}}
CAMPAIGNS = {"aggregations": {"shop": {"buckets": [{"key": "shop-1", "campaign": {"buckets": [
    {"key": "sale", **_statuses(sent=8, suppressed=1, skipped_duplicate=1),
     "last": {"value": 5.0}}]}}]}}}


def test_the_snapshot_adds_up():
    shot = snapshot(ANSWER, CAMPAIGNS, {"app-sink": 12, "app-router": 3},
                    [{"rule": "bounce_rate", "key": "x.test", "rate": 0.08, "threshold": 0.05,
                      "at": 9}], {"smtp": False}, [], 1000, minutes=15)
    assert shot["sent_total"] == 930 and shot["priorities"]["marketing"]["per_minute"] == 60.0
    assert shot["latency"]["critical"] == {"p50": 120.0, "p95": 200.0, "p99": 240.0}
    assert shot["providers"] == [{"name": "smtp", "sent": 930, "failed": 10,
                                  "failure_rate": round(10 / 940, 4), "breaker_open": False,
                                  "out": False}]
    assert shot["lag_total"] == 15
    assert shot["campaigns"] == [{"campaign_id": "sale", "shop_id": "shop-1", "emails": 10,
                                  "sent": 8, "failed": 0, "suppressed": 1, "other": 1,
                                  "last_at": 5}]
    assert snapshot({}, {}, {}, [], {}, [], 0)["sent_total"] == 0  # nothing indexed yet
    assert query(60_000)["query"]["bool"]["filter"][0]["range"]["@timestamp"]["gte"] == -840_000


def test_alerts_raised_and_breakers_open():
    alerts = [{"type": "anomaly", "id": "a", "state": "raised"},
              {"type": "anomaly", "id": "b", "state": "raised"},
              {"type": "anomaly", "id": "a", "state": "cleared"},
              {"type": "critical_failure", "id": "c"}]
    assert [a["id"] for a in raised(alerts)] == ["b"]
    text = ('flowmail_provider_breaker_open{provider="sendgrid"} 1.0\n'
            'flowmail_provider_breaker_open{provider="smtp"} 0.0\n# HELP x\n')
    assert breaker_states(text) == {"sendgrid": True, "smtp": False}


def test_campaign_rows_join_the_runs_progress_and_show_scheduled_campaigns():
    from processors.dashboard import campaign_rows
    progress = {"phase": "sending", "paused": True, "targeted": 20, "counted": True,
                "queued": 12, "winner": None}
    later = {**progress, "phase": "scheduled", "paused": False, "targeted": 0,
             "counted": False, "queued": 0}
    finished = {**progress, "phase": "done", "paused": False}
    rows = campaign_rows(CAMPAIGNS, {("shop-1", "sale"): progress,
                                     ("shop-2", "sale"): later,    # same id, other shop
                                     ("shop-2", "old"): finished})  # nothing in the last day
    assert [(r["shop_id"], r["campaign_id"]) for r in rows] == [("shop-1", "sale"),
                                                                 ("shop-2", "sale")]
    assert rows[0]["phase"] == "sending (paused)" and rows[0]["targeted"] == 20
    assert rows[0]["sent"] == 8 and rows[0]["queued"] == 12
    assert rows[1]["phase"] == "scheduled" and rows[1]["targeted"] is None
    assert rows[1]["sent"] == 0
