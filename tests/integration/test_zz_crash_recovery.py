"""SIGKILL the worker in the middle of a run, start it again: nothing lost, duplicates counted.

Runs last (file name) because it replaces the session's worker process.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import requests

from flowmail.publisher import Publisher
from flowmail.samples import SAMPLES
from processors.keys import idempotency_key
from tests.integration.helpers import poll, workers_ready

TOTAL = int(os.environ.get("FLOWMAIL_TEST_CRASH_EMAILS", "1500"))  # 5000 for the full check
KEY_HEADER = re.compile(rb"X-Flowmail-Idempotency-Key:\s*([0-9a-f]{40})")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class OutboxCounter:
    """Counts idempotency keys in the outbox, reading each new file once."""

    def __init__(self, outbox: Path, keys: set[str]) -> None:
        self.outbox, self.keys, self.seen, self.counts = outbox, keys, set(), Counter()

    def refresh(self) -> Counter:
        for path in self.outbox.glob("*.eml"):
            if path.name in self.seen:
                continue
            self.seen.add(path.name)
            match = KEY_HEADER.search(path.read_bytes()[:4096])
            if match and match.group(1).decode() in self.keys:
                self.counts[match.group(1).decode()] += 1
        return self.counts


def test_sigkill_mid_run_loses_nothing(worker, settings):
    events = [SAMPLES["shipment.updated"](i) for i in range(TOTAL)]
    keys = {idempotency_key(e["event_id"], "shipping_update", e["email"]) for e in events}
    counter = OutboxCounter(settings.outbox_dir, keys)
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event in events:
            publisher.publish("shipment.updated", event)
    poll(lambda: len(counter.refresh()) >= TOTAL // 3, "a third of the emails", timeout_s=120)
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait(timeout=30)
    at_kill = len(counter.refresh())

    _restart(worker, settings)
    started = time.monotonic()
    poll(lambda: len(counter.refresh()) == TOTAL, "every email after the restart",
         timeout_s=300, every_s=1)
    counts = counter.refresh()
    duplicates = sum(n - 1 for n in counts.values())
    ARTIFACTS.mkdir(exist_ok=True)
    report = {"emails": TOTAL, "delivered_before_kill": at_kill, "lost": TOTAL - len(counts),
              "duplicates": duplicates, "recovery_s": round(time.monotonic() - started, 1)}
    (ARTIFACTS / "crash-recovery.json").write_text(json.dumps(report, indent=2))
    print(f"\ncrash recovery: {report}")
    assert report["lost"] == 0
    # At least once: a send the provider accepted just before the kill, whose ledger write
    # the broker had not yet acknowledged, goes out again (README, "window"). Measured here:
    # 0 or 1 of 1,500. The target is zero; this bounds a regression.
    assert duplicates <= TOTAL * 0.05, report


def _restart(worker, settings, kill: bool = False) -> None:
    if kill:
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait(timeout=30)
    log = open(worker.log, "ab")
    worker.process = subprocess.Popen([sys.executable, "-m", "flowmail", "worker"], stdout=log,
                                      stderr=subprocess.STDOUT, env=dict(os.environ))
    poll(lambda: _ready(settings), "the restarted worker", timeout_s=180)


BULK_TOTAL = int(os.environ.get("FLOWMAIL_TEST_BULK_CRASH_RECIPIENTS", "20000"))


def test_sigkill_during_a_batch_campaign_loses_nothing_and_sends_nothing_twice(
        worker, settings, fake_apis):
    """Marketing through Mailgun's batch API (1,000 recipients a call), SIGKILL while the
    campaign drains. Policy (bulk_sender.py): a batch whose outcome the crash left unknown is
    reported ambiguous and not resent. So: every recipient received once or reported
    ambiguous; none twice; none silently missing."""
    from bench.e2e import seed_profiles
    from bench.workload import profile
    from flowmail.samples import campaign_launched
    fake_apis.primary_down()  # Mailgun, the marketing chain, stays healthy
    run = uuid.uuid4().hex[:8]
    people = [profile(run, i, i % settings.partitions_domain) for i in range(BULK_TOTAL)]
    seed_profiles(settings.kafka_bootstrap, people)
    _restart(worker, settings, kill=True)  # the table is recovered with the seeded profiles
    campaign = campaign_launched(f"crash-{run}", tags_any=[f"bench-{run}"])
    keys = {idempotency_key(campaign["event_id"], "marketing_campaign", p["email"])
            for p in people}

    def received() -> Counter:
        answer = requests.get(f"{fake_apis.mailgun_url}/_fake/receipts", timeout=30).json()
        return Counter(key for key, *_ in answer["receipts"] if key in keys)

    def ambiguous() -> set[str]:
        """Recipients reported ambiguous (the call in flight at the kill: the provider may or
        may not have taken it, so some of them may also have been received)."""
        index = f"{settings.opensearch_url}/{settings.index_prefix}-*"
        requests.post(f"{index}/_refresh", timeout=30)
        answer = requests.post(f"{index}/_search", timeout=30, json={
            "size": 10_000, "_source": ["idempotency_key"], "query": {"bool": {
                "filter": [{"term": {"source_event_id": campaign["event_id"]}},
                           {"term": {"status": "ambiguous"}}]}}})
        hits = answer.json().get("hits", {}).get("hits", []) if answer.ok else []
        return {hit["_source"]["idempotency_key"] for hit in hits}

    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("campaign.launched", campaign)
    poll(lambda: len(received()) >= BULK_TOTAL // 3, "a third of the campaign",
         timeout_s=300, every_s=0.5)
    os.kill(worker.process.pid, signal.SIGKILL)  # every worker process dies with it
    worker.process.wait(timeout=30)
    at_kill = len(received())
    _restart(worker, settings)
    poll(lambda: len(set(received()) | ambiguous()) >= BULK_TOTAL,
         "every recipient received or reported ambiguous", timeout_s=600, every_s=2)
    counts, unsure = received(), ambiguous()
    report = {"recipients": BULK_TOTAL, "received_before_kill": at_kill,
              "received": len(counts), "ambiguous": len(unsure),
              "ambiguous_and_received": len(unsure & set(counts)),
              "duplicates": sum(n - 1 for n in counts.values()),
              "lost": len(keys - set(counts) - unsure)}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "crash-recovery-bulk.json").write_text(json.dumps(report, indent=2))
    print(f"\nbulk crash recovery: {report}")
    seed_profiles(settings.kafka_bootstrap, people, remove=True)
    assert report["duplicates"] == 0 and report["lost"] == 0, report


def _ready(settings) -> bool:
    return workers_ready(settings.web_port)


def test_a_scheduled_campaign_starts_on_time_after_the_worker_is_killed(
        worker, settings, fake_apis):
    """Launched for 30 s from now, the worker SIGKILLed while the campaign waits: the new
    worker restores the schedule from the runs changelog and hands out nobody before send_at."""
    import datetime as dt

    from flowmail.campaign_control import all_runs
    from flowmail.samples import campaign_launched
    from tests.integration.helpers import end_offsets, read_topic
    from tests.integration.test_all_event_types import commands_for
    from tests.integration.test_campaign_control import at_mailgun, audience, launch
    fake_apis.primary_down()
    tag, users = audience(settings, 12)
    send_at = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=30)
    campaign = campaign_launched(f"later-{uuid.uuid4().hex[:6]}", send_at=send_at,
                                 tags_any=[tag])
    since = end_offsets(settings.kafka_bootstrap, "email.marketing")
    launch(settings, campaign)
    key = (campaign["shop"]["shop_id"], campaign["campaign_id"])
    poll(lambda: (lambda r: len(r) == settings.partitions_domain
                  and all(x["phase"] == "scheduled" for x in r))(all_runs(settings).get(key, [])),
         "the campaign's runs stored, waiting")
    _restart(worker, settings, kill=True)
    mails = poll(lambda: (lambda m: m if len(m) == len(users) else None)(
        at_mailgun(fake_apis, campaign, users)), "the campaign after the restart",
        timeout_s=180)
    assert len(mails) == len(users)
    records = read_topic(settings.kafka_bootstrap, "email.marketing", since)
    commands = commands_for(settings, "email.marketing", since, {campaign["event_id"]})
    assert len(commands) == len(users)
    handed_out = [r.timestamp()[1] for r in records
                  if campaign["event_id"].encode() in (r.value() or b"")]
    assert min(handed_out) >= int(send_at.timestamp() * 1000)
    runs = all_runs(settings)[key]
    assert {r["start_at"] for r in runs} == {int(send_at.timestamp() * 1000)}
    assert all(r["phase"] == "done" and r["started_at"] >= r["start_at"] for r in runs)
