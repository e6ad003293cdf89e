"""Campaign control's pure decisions: phases, commands, the throttle, the A/B test."""

from __future__ import annotations

import datetime as dt

import pytest

from flowmail.samples import campaign_launched
from processors import campaign_runs as runs
from processors.errors import RejectedInput
from processors.routing import validate_campaign

NOW = 1_800_000_000_000
AB = {"test_percent": 20, "window_seconds": 60, "metric": "click_rate", "min_sample": 10}


def run_of(**fields):
    event = campaign_launched("c1", **fields)
    return runs.new_run(event, 0, "payload", NOW, NOW)


def test_a_run_waits_for_send_at_and_a_paused_one_for_its_resume():
    later = dt.datetime.fromtimestamp((NOW + 120_000) / 1000, dt.UTC)
    run = run_of(send_at=later)
    assert run["start_at"] == NOW + 120_000 and run["phase"] == "scheduled"
    assert not runs.due(run, NOW + 119_999) and runs.due(run, NOW + 120_000)
    paused = runs.apply_control(run, "pause", NOW)
    assert not runs.due(paused, NOW + 200_000)
    assert runs.due(runs.apply_control(paused, "resume", NOW), NOW + 200_000)
    assert run_of()["start_at"] == NOW  # no send_at: at once


def test_phases_without_and_with_an_ab_test():
    plain = runs.start(run_of(), 10, NOW)
    assert plain["phase"] == "sending" and runs.may_hand_out(plain)
    assert runs.pass_done(plain, NOW)["phase"] == "done"
    tested = runs.start(run_of(ab_test=AB), 10, NOW)
    assert tested["phase"] == "testing"
    waiting = runs.pass_done(tested, NOW + 5)
    assert waiting["phase"] == "waiting" and waiting["test_done_at"] == NOW + 5
    assert not runs.may_hand_out(waiting)
    rest = runs.apply_control(waiting, runs.WINNER, NOW + 9, "B", {"winner": "B"})
    assert rest["phase"] == "rest" and rest["winner"] == "B" and rest["cursor"] is None
    assert runs.pass_done(rest, NOW + 10)["phase"] == "done"
    # a winner that comes while this partition still tests: the rest follows its test share
    early = runs.apply_control(tested, runs.WINNER, NOW, "A")
    assert early["phase"] == "testing" and runs.pass_done(early, NOW)["phase"] == "rest"


def test_cancel_ends_a_run_and_nothing_revives_it():
    cancelled = runs.apply_control(runs.start(run_of(), 3, NOW), "cancel", NOW)
    assert cancelled["phase"] == "cancelled" and not runs.may_hand_out(cancelled)
    for action in ("resume", "pause", runs.WINNER):
        assert runs.apply_control(cancelled, action, NOW, "A")["phase"] == "cancelled"


def test_commands_before_the_launch_are_honoured_by_it():
    early = runs.apply_control(runs.placeholder("shop-042", "c1", 0, NOW), "pause", NOW)
    assert runs.adopt(run_of(), early)["paused"] is True
    gone = runs.apply_control(runs.placeholder("shop-042", "c1", 0, NOW), "cancel", NOW)
    assert runs.adopt(run_of(), gone)["phase"] == "cancelled"


def test_the_throttle_is_shared_by_the_partitions_and_saves_no_burst():
    run = run_of(throttle_per_minute=600)
    assert runs.per_second(run, 3) == pytest.approx(600 / 60 / 3)
    assert runs.per_second(run_of(), 3) is None
    assert runs.refill(0.0, 2.0, 0.5) == pytest.approx(1.0)
    assert runs.refill(0.0, 2.0, 3600) == 2.0        # a second's worth at most
    assert runs.refill(0.0, 0.01, 3600) == 1.0       # never less than one email


def test_the_test_share_is_stable_and_near_its_percentage():
    users = [f"u{i}" for i in range(20_000)]
    share = [u for u in users if runs.in_test_share("c1", u, 20)]
    assert 0.18 < len(share) / len(users) < 0.22
    assert share == [u for u in users if runs.in_test_share("c1", u, 20)]
    tested = runs.start(run_of(ab_test=AB), 10, NOW)
    rest = {**tested, "phase": "rest"}
    assert all(runs.wanted(tested, u) != runs.wanted(rest, u) for u in users[:2000])


def test_the_winner_by_click_rate_with_a_minimum_sample():
    results = {"A": runs.VariantResult("A", 100, 40, 5), "B": runs.VariantResult("B", 100, 30, 12)}
    decided = runs.decide(["A", "B"], results, "click_rate", 50)
    assert decided["winner"] == "B" and decided["reason"] == "best_metric"
    assert decided["figures"]["B"]["rate"] == 0.12
    assert runs.decide(["A", "B"], results, "open_rate", 50)["winner"] == "A"
    small = runs.decide(["A", "B"], results, "click_rate", 101)
    assert small["winner"] == "A" and small["reason"] == "insufficient_sample"
    tie = {"A": runs.VariantResult("A", 100, 0, 5), "B": runs.VariantResult("B", 100, 0, 5)}
    assert runs.decide(["A", "B"], tie, "click_rate", 1)["reason"] == "tie"
    # a variant below the sample cannot win, however good its rate
    lucky = {"A": runs.VariantResult("A", 100, 0, 1), "B": runs.VariantResult("B", 2, 0, 2)}
    assert runs.decide(["A", "B"], lucky, "click_rate", 10)["winner"] == "A"
    assert runs.decide(["A", "B"], {}, "click_rate", 1)["reason"] == "insufficient_sample"


def test_the_decision_waits_for_every_partition_and_the_window():
    waiting = [{**runs.pass_done(runs.start(run_of(ab_test=AB), 1, NOW), NOW + i),
                "partition": i} for i in range(3)]
    assert not runs.ready_to_decide(waiting[:2], 3, NOW + 10**9)
    assert not runs.ready_to_decide(waiting, 3, NOW + 2 + 59_999)
    assert runs.ready_to_decide(waiting, 3, NOW + 2 + 60_000)
    testing = [*waiting[:2], runs.start(run_of(ab_test=AB), 1, NOW)]
    assert not runs.ready_to_decide(testing, 3, NOW + 10**9)


@pytest.mark.parametrize(("change", "message"), [
    ({"throttle_per_minute": 0}, "throttle_per_minute"),
    ({"ab_test": {**AB, "test_percent": 100}}, "test_percent"),
    ({"ab_test": {**AB, "window_seconds": 0}}, "window_seconds"),
    ({"ab_test": {**AB, "metric": "revenue"}}, "metric"),
    ({"ab_test": {**AB, "min_sample": 0}}, "min_sample"),
])
def test_bad_plans_are_refused_at_launch(change, message):
    with pytest.raises(RejectedInput, match=message):
        validate_campaign({**campaign_launched("c1"), **change})


def test_an_ab_test_needs_two_variants():
    event = campaign_launched("c1", ab_test=AB)
    event["variants"] = event["variants"][:1]
    with pytest.raises(RejectedInput, match="two variants"):
        validate_campaign(event)


@pytest.mark.parametrize("event", [
    {"action": "explode", "shop_id": "s", "campaign_id": "c"},
    {"action": "pause", "shop_id": " ", "campaign_id": "c"},
    {"action": "pause", "shop_id": "s", "campaign_id": ""},
    {"action": "winner", "shop_id": "s", "campaign_id": "c", "variant_id": None},
])
def test_bad_commands_are_refused(event):
    with pytest.raises(RejectedInput):
        runs.validate_control(event)


def test_progress_sums_the_partitions():
    parts = [{**runs.start(run_of(), 5, NOW), "partition": i, "queued": 3} for i in range(3)]
    summary = runs.progress(parts)
    assert summary["targeted"] == 15 and summary["queued"] == 9 and summary["counted"]
    assert summary["phase"] == "sending"


def test_a_raised_bounce_or_complaint_alert_on_a_campaign_names_what_to_pause():
    alert = {"state": "raised", "dimension": "campaign", "rule": "bounce_rate",
             "key": "shop-042/winter/2026"}
    assert runs.campaign_of(alert) == ("shop-042", "winter/2026")
    assert runs.campaign_of({**alert, "rule": "complaint_rate"}) == ("shop-042", "winter/2026")
    assert runs.campaign_of({**alert, "state": "cleared"}) is None
    assert runs.campaign_of({**alert, "dimension": "shop_id", "key": "shop-042"}) is None
    assert runs.campaign_of({**alert, "rule": "provider_failure_rate"}) is None
    assert runs.campaign_of({**alert, "key": "no-campaign"}) is None


def test_the_anomaly_rules_count_a_campaign_per_shop():
    from core.vocab import DeliveryStatus
    from processors.anomaly import count, default_rules
    from processors.commands import DeliveryEvent

    def event(shop):
        return DeliveryEvent(event_id="e", status=DeliveryStatus.SENT, idempotency_key="k",
                             command_id="", email_type="marketing_campaign",
                             priority="marketing", locale="en", shop_id=shop,
                             recipient_key="r", recipient_domain="example.org", attempt=1,
                             source_event_id="", occurred_at=NOW, campaign_id="sale")
    counted = count([event("shop-1"), event("shop-2"), event("shop-2")], default_rules())
    assert {key: sum(m["sent"] for m in minutes.values())
            for key, minutes in counted["campaign"].items()} == {"shop-1/sale": 1,
                                                                 "shop-2/sale": 2}


def test_every_control_record_fits_its_schema():
    from core.avro import registry
    decision = runs.decide(["A", "B"], {"A": runs.VariantResult("A", 10, 1, 1)}, "click_rate", 1)
    for event in (runs.control_event("shop-042", "c1", "pause", "copy typo"),
                  runs.control_event("shop-042", "c1", runs.WINNER, decision=decision)):
        back = registry().decode("campaign.control-value",
                                 registry().encode("campaign.control-value", event))
        runs.validate_control(back)
    assert back["variant_id"] == "A" and back["reason"] == "best_metric"
    assert back["figures_json"] and '"figures"' in back["figures_json"]
