"""Campaign control as pure decisions over one partition's run of a campaign.

A launched campaign becomes one *run* per domain partition (the profiles of that partition),
kept in the app's compacted runs changelog (``<app id>-campaign_runs-changelog``) so that a
schedule, a pause or a half-sent audience survives restarts and moves with the partition. A
run walks its profiles in key order with a cursor; each turn of the router hands out what
the throttle allows.

Phases: ``scheduled`` (before ``send_at``) -> ``sending`` -> ``done``; with an A/B test
``testing`` (the test share, variants by weight) -> ``waiting`` (the window; one member
decides for every partition) -> ``rest`` (everybody else, the winner) -> ``done``.
``cancelled`` ends any phase; ``paused`` holds any phase without changing it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from core.vocab import RejectReason
from processors.errors import RejectedInput

ACTIONS = ("pause", "resume", "cancel")   # what operators may send
WINNER = "winner"                         # what the A/B decision sends
METRICS = {"click_rate": "clicked", "open_rate": "opened"}
ACTIVE = ("scheduled", "sending", "testing", "waiting", "rest")
PASSES = ("sending", "testing", "rest")   # phases that hand out recipients


def run_key(shop_id: str, campaign_id: str, partition: int) -> str:
    """A run's key in the runs changelog: the shop is part of it (campaign ids are the shops'
    own and may collide), the partition makes every key of the topic distinct."""
    return json.dumps([shop_id, campaign_id, partition])


def campaign_of(alert: dict[str, Any]) -> tuple[str, str] | None:
    """(shop, campaign) of a raised bounce or complaint alert on a campaign (its key is
    ``<shop>/<campaign>``), which pauses it; None for any other alert."""
    if (alert.get("state") != "raised" or alert.get("dimension") != "campaign"
            or alert.get("rule") not in ("bounce_rate", "complaint_rate")):
        return None
    shop_id, _, campaign_id = str(alert.get("key", "")).partition("/")
    return (shop_id, campaign_id) if shop_id and campaign_id else None


def control_event(shop_id: str, campaign_id: str, action: str, reason: str | None = None,
                  decision: dict[str, Any] | None = None, event_id: str | None = None
                  ) -> dict[str, Any]:
    """A ``campaign.control`` record: an operator's command, an alert's pause or the A/B
    decision (``decision``: its winner, reason and figures)."""
    return {"event_id": event_id or str(uuid.uuid4()), "occurred_at": dt.datetime.now(dt.UTC),
            "schema_version": 1, "shop_id": shop_id, "campaign_id": campaign_id,
            "action": action, "variant_id": decision["winner"] if decision else None,
            "reason": decision["reason"] if decision else reason,
            "figures_json": json.dumps(decision) if decision else None}


def validate_control(event: dict[str, Any]) -> None:
    """An operator's command: a known action for a named campaign of a named shop."""
    action = event.get("action")
    if action not in (*ACTIONS, WINNER):
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    for field in ("shop_id", "campaign_id"):
        if not str(event.get(field) or "").strip():
            raise RejectedInput(RejectReason.MISSING_FIELD, f"{field} is empty")
    if action == WINNER and not event.get("variant_id"):
        raise RejectedInput(RejectReason.MISSING_FIELD, "a winner needs its variant_id")


def validate_plan(event: dict[str, Any]) -> None:
    """The control fields of a launch (schema v2), checked once for the whole campaign."""
    throttle = event.get("throttle_per_minute")
    if throttle is not None and throttle <= 0:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "throttle_per_minute must be > 0")
    ab = event.get("ab_test")
    if ab is None:
        return
    if len(event["variants"]) < 2:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "an A/B test needs two variants")
    if not 1 <= ab["test_percent"] <= 99:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "ab_test.test_percent: 1-99")
    if ab["window_seconds"] <= 0:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "ab_test.window_seconds must be > 0")
    if ab["metric"] not in METRICS:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH,
                            f"ab_test.metric must be one of {', '.join(METRICS)}")
    if ab.get("min_sample", 0) < 1:
        raise RejectedInput(RejectReason.SCHEMA_MISMATCH, "ab_test.min_sample must be >= 1")


def _ms(value: Any) -> int | None:
    """A decoded timestamp-millis (datetime) or epoch millis, as epoch millis."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return int(value)
    return int(value.timestamp() * 1000)


def new_run(event: dict[str, Any], partition: int, payload: str, published: int,
            now: int) -> dict[str, Any]:
    """The run of ``partition`` for a launch (``payload``: the launch, base64 Avro)."""
    ab = event.get("ab_test")
    return {"shop_id": event["shop"]["shop_id"], "campaign_id": event["campaign_id"],
            "event_id": event["event_id"], "partition": partition, "payload": payload,
            "published": published, "start_at": _ms(event.get("send_at")) or published,
            "throttle_per_minute": event.get("throttle_per_minute"),
            "ab": dict(ab) if ab else None, "phase": "scheduled", "paused": False,
            "cursor": None, "targeted": None, "queued": 0, "skipped": 0,
            "test_done_at": None, "winner": None, "decision": None,
            "started_at": None, "finished_at": None, "updated_at": now}


def placeholder(shop_id: str, campaign_id: str, partition: int, now: int) -> dict[str, Any]:
    """A command that arrived before its launch (topics are not ordered with each other):
    kept so the launch honours it."""
    return {"shop_id": shop_id, "campaign_id": campaign_id, "event_id": None,
            "partition": partition, "phase": "pending", "paused": False, "updated_at": now}


def adopt(run: dict[str, Any], earlier: dict[str, Any] | None) -> dict[str, Any]:
    """A new launch takes over the commands given before it arrived."""
    if earlier and earlier.get("phase") == "pending":
        run["paused"] = earlier.get("paused", False)
        if earlier.get("cancelled"):
            run["phase"] = "cancelled"
    return run


def apply_control(run: dict[str, Any], action: str, now: int, variant_id: str | None = None,
                  decision: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run after an operator's command or the A/B decision. A finished or cancelled run
    stays as it is; a second identical command changes nothing."""
    run = dict(run)
    if run["phase"] in ("done", "cancelled"):
        return run
    if action == "pause":
        run["paused"] = True
    elif action == "resume":
        run["paused"] = False
    elif action == "cancel":
        if run["phase"] == "pending":
            run["cancelled"] = True
        else:
            run["phase"], run["finished_at"] = "cancelled", now
    elif action == WINNER and run.get("ab") and run.get("winner") is None:
        run["winner"], run["decision"] = variant_id, decision
        if run["phase"] == "waiting":
            run["phase"], run["cursor"] = "rest", None
    run["updated_at"] = now
    return run


def start(run: dict[str, Any], targeted: int, now: int) -> dict[str, Any]:
    """``send_at`` has come: the first pass begins with the audience counted."""
    return {**run, "phase": "testing" if run.get("ab") else "sending", "targeted": targeted,
            "cursor": None, "started_at": now, "updated_at": now}


def pass_done(run: dict[str, Any], now: int) -> dict[str, Any]:
    """Every profile of the partition was walked in this phase."""
    run = {**run, "cursor": None, "updated_at": now}
    if run["phase"] == "testing":
        if run.get("winner"):  # decided before this partition had finished its test share
            return {**run, "phase": "rest", "test_done_at": now}
        return {**run, "phase": "waiting", "test_done_at": now}
    return {**run, "phase": "done", "finished_at": now}


def due(run: dict[str, Any], now: int) -> bool:
    """A scheduled run whose time has come (a paused one waits for its resume)."""
    return run["phase"] == "scheduled" and not run.get("paused") and now >= run["start_at"]


def may_hand_out(run: dict[str, Any]) -> bool:
    return not run.get("paused") and run["phase"] in PASSES


def per_second(run: dict[str, Any], partitions: int) -> float | None:
    """This partition's share of the throttle, in recipients a second (None: no throttle).
    Every partition gets an equal share: the campaign never goes faster than asked, and
    slower only when the audience is unevenly spread."""
    throttle = run.get("throttle_per_minute")
    return None if throttle is None else throttle / 60.0 / max(1, partitions)


def refill(tokens: float, rate: float, elapsed_s: float) -> float:
    """A token bucket that holds at most one second's worth (never less than one email),
    so a paused or idle run does not save up a burst."""
    return min(max(rate, 1.0), tokens + rate * max(0.0, elapsed_s))


def in_test_share(campaign_id: str, user_id: str, percent: int) -> bool:
    """Deterministic and independent of the variant split: the same person is in or out of a
    campaign's test share on every pass and every worker."""
    digest = hashlib.sha256(f"ab-share\x1f{campaign_id}\x1f{user_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def wanted(run: dict[str, Any], user_id: str) -> bool:
    """Whether the current pass hands out this (matching) profile."""
    ab = run.get("ab")
    if not ab or run["phase"] == "sending":
        return True
    test = in_test_share(run["campaign_id"], user_id, ab["test_percent"])
    return test if run["phase"] == "testing" else not test


@dataclass(frozen=True)
class VariantResult:
    variant_id: str
    sent: int
    opened: int
    clicked: int

    def rate(self, metric: str) -> float:
        return getattr(self, METRICS[metric]) / self.sent if self.sent else 0.0


def decide(variants: list[str], results: dict[str, VariantResult], metric: str,
           min_sample: int) -> dict[str, Any]:
    """The winner among variants with at least ``min_sample`` emails sent, by ``metric``;
    a tie or too small a sample keeps the first variant (the control) and says so."""
    figures = {v: {**asdict(results.get(v, VariantResult(v, 0, 0, 0))),
                   "rate": round(results[v].rate(metric), 4) if v in results else 0.0}
               for v in variants}
    eligible = [v for v in variants if figures[v]["sent"] >= min_sample]
    if not eligible:
        return {"winner": variants[0], "reason": "insufficient_sample", "metric": metric,
                "min_sample": min_sample, "figures": figures}
    best = max(figures[v]["rate"] for v in eligible)
    leaders = [v for v in eligible if figures[v]["rate"] == best]
    return {"winner": leaders[0], "reason": "tie" if len(leaders) > 1 else "best_metric",
            "metric": metric, "min_sample": min_sample, "figures": figures}


def ready_to_decide(runs: list[dict[str, Any]], partitions: int, now: int) -> bool:
    """Every partition handed out its test share, and the window has passed since the last
    one did."""
    if len(runs) < partitions or any(r.get("winner") for r in runs):
        return False
    if any(r["phase"] != "waiting" or r.get("paused") for r in runs):
        return False
    window_ms = runs[0]["ab"]["window_seconds"] * 1000
    return now >= max(r["test_done_at"] for r in runs) + window_ms


def progress(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One campaign's runs summed: what operators read next to the delivery outcomes."""
    phases = sorted({r["phase"] for r in runs})
    return {"phase": phases[0] if len(phases) == 1 else "+".join(phases),
            "paused": any(r.get("paused") for r in runs),
            "targeted": sum(r.get("targeted") or 0 for r in runs),
            "counted": all(r.get("targeted") is not None for r in runs),
            "queued": sum(r.get("queued", 0) for r in runs),
            "skipped_invalid": sum(r.get("skipped", 0) for r in runs),
            "start_at": min((r["start_at"] for r in runs if r.get("start_at")), default=None),
            "winner": next((r["winner"] for r in runs if r.get("winner")), None),
            "decision": next((r["decision"] for r in runs if r.get("decision")), None),
            "partitions": len(runs)}
