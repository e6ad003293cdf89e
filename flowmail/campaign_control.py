"""Operators' hold on campaigns: pause, resume and cancel commands, and where a campaign is.

A command goes to ``campaign.control`` (Avro, keyed by campaign id) and acts on the campaign
of the named shop only. Progress joins the runs in the app's runs changelog (targeted, handed to the
senders, phase, the A/B decision) with the outcomes in OpenSearch (sent, failed,
suppressed, and per variant opens and clicks).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from confluent_kafka import Producer

from core.avro import registry
from core.kafka_config import producer_config
from core.settings import Settings
from processors import campaign_runs as runs
from streams.campaign_runner import variant_results
from streams.changelog_store import read_to_end
from streams.serde import serde
from streams.topics import CAMPAIGN_CONTROL, campaign_runs_changelog


def command(settings: Settings, shop_id: str, campaign_id: str, action: str,
            reason: str | None = None) -> str:
    """Publish ``action`` for the shop's campaign, acknowledged by Kafka; its event id."""
    event = runs.control_event(shop_id, campaign_id, action, reason)
    if action not in runs.ACTIONS:
        raise ValueError(f"action must be one of {', '.join(runs.ACTIONS)}")
    runs.validate_control(event)
    value = serde(settings, registry(), CAMPAIGN_CONTROL).encode(event, check=True)
    producer = Producer(producer_config(settings.kafka_bootstrap))
    failures: list[str] = []
    producer.produce(CAMPAIGN_CONTROL, key=campaign_id.encode(), value=value,
                     on_delivery=lambda err, _m: failures.append(str(err)) if err else None)
    if producer.flush(30) or failures:
        raise RuntimeError(f"the command was not stored: {failures or 'timeout'}")
    return str(event["event_id"])


def all_runs(settings: Settings) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every campaign's latest run per partition, by (shop, campaign)."""
    latest: dict[bytes, dict[str, Any]] = {}

    def keep(_partition: int, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            latest.pop(key, None)
        else:
            latest[key] = json.loads(value)

    admin = Producer(producer_config(settings.kafka_bootstrap))
    name = campaign_runs_changelog(settings.app_id)
    topic = admin.list_topics(name, timeout=10).topics.get(name)
    partitions = sorted(topic.partitions) if topic and not topic.error else []
    read_to_end(settings.kafka_bootstrap, name, partitions, keep, timeout_s=60)
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in latest.values():
        if run.get("phase") != "pending":
            found.setdefault((run["shop_id"], run["campaign_id"]), []).append(run)
    return found


def status(settings: Settings, shop_id: str, campaign_id: str) -> dict[str, Any] | None:
    """Progress and outcomes of one campaign (None: no such campaign of that shop); raises
    ``requests.RequestException`` when OpenSearch does not answer."""
    found = all_runs(settings).get((shop_id, campaign_id))
    if not found:
        return None
    summary = runs.progress(found)
    since = min(r.get("started_at") or r["start_at"] for r in found)
    variants = {name: row.as_dict()
                for name, row in variant_results(settings, shop_id, campaign_id, since).items()}
    totals = {name: sum(v[name] for v in variants.values())
              for name in ("sent", "failed", "suppressed", "bounced", "opened", "clicked")}
    return {"shop_id": shop_id, "campaign_id": campaign_id, **summary, **totals,
            "variants": variants}


def text(found: dict[str, Any]) -> str:
    start = (dt.datetime.fromtimestamp(found["start_at"] / 1000, dt.UTC).isoformat(
        timespec="seconds") if found.get("start_at") else "-")
    lines = [f"campaign {found['campaign_id']} of shop {found['shop_id']}: {found['phase']}"
             f"{' (paused)' if found['paused'] else ''}, starts {start}",
             f"targeted {found['targeted'] if found['counted'] else 'counting'}, handed to "
             f"the senders {found['queued']}, sent {found['sent']}, failed {found['failed']}, "
             f"suppressed {found['suppressed']}, bounced {found['bounced']}"]
    for name, row in sorted(found["variants"].items()):
        lines.append(f"  variant {name}: sent {row['sent']}, opened {row['opened']} "
                     f"({row['opened_rate']}), clicked {row['clicked']} ({row['clicked_rate']})")
    if found.get("decision"):
        decision = found["decision"]
        lines.append(f"A/B winner {decision['winner']} by {decision['metric']} "
                     f"({decision['reason']}, min sample {decision['min_sample']})")
    return "\n".join(lines)
