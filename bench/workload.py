"""The benchmark's workload: the case study's daily mix scaled to N, as domain events, the
stored profiles its campaign reaches, and the idempotency key every email will carry.

Pure: no Kafka here, so the mix and the expected keys are unit-tested directly.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

from core.catalogue import BY_TOPIC, CATALOGUE, EMAIL_OF, PRIORITY_OF, EmailType
from core.vocab import Priority
from flowmail.samples import SAMPLES, campaign_launched, path_set
from processors.keys import idempotency_key

# The case study's emails per day (section "Current load"), as the catalogue declares them;
# "marketing": a campaign's recipients.
DAILY_MIX = {("marketing" if e.email_type is EmailType.MARKETING_CAMPAIGN else e.topic):
             e.daily_volume for e in CATALOGUE if e.daily_volume}
# One per supported locale: (first name, locale preference, country)
LOCALES = [("Emily", "en-US", "US"), ("Lena", "de-DE", "DE"), ("Camille", "fr-FR", "FR"),
           ("Lucía", "es-ES", "ES"), ("Giulia", "it-IT", "IT"), ("João", "pt-BR", "BR"),
           ("Haruto", "ja-JP", "JP"), ("Wei", "zh-Hans-CN", "CN")]


def scaled_mix(n: int, mix: dict[str, int] = DAILY_MIX) -> dict[str, int]:
    """Largest-remainder rounding: the counts add up to exactly ``n``."""
    total = sum(mix.values())
    exact = {name: n * count / total for name, count in mix.items()}
    counts = {name: int(value) for name, value in exact.items()}
    short = n - sum(counts.values())
    for name in sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)[:short]:
        counts[name] += 1
    return counts


@dataclass
class Expected:
    """What one email should look like at the sink."""

    priority: Priority
    email_type: EmailType
    event_index: int  # position in ``Workload.events``: its publish time is the latency start


@dataclass
class Workload:
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, Expected] = field(default_factory=dict)

    def count_by_priority(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.expected.values():
            counts[item.priority.value] = counts.get(item.priority.value, 0) + 1
        return counts


def _personalize(event_type: str, event: dict[str, Any], run: str, index: int) -> str:
    """Unique user ids and addresses per run, so runs never share keys or profiles; returns
    the address."""
    declared, address = BY_TOPIC[event_type], f"u{index}.{run}@bench.example"
    path_set(event, declared.key, f"bench-{run}-{index}")
    path_set(event, declared.recipient, address)
    return address


def profile(run: str, index: int, partition: int) -> dict[str, Any]:
    """A stored, opted-in customer the campaign reaches (the shape of processors.profiles)."""
    first, pref, country = LOCALES[index % len(LOCALES)]
    return {"user_id": f"bench-{run}-m{index}", "email": f"m{index}.{run}@bench.example",
            "first_name": first, "last_name": "Bench", "locale": pref, "country": country,
            "marketing_opt_in": True, "tags": [f"bench-{run}"], "shop_id": "shop-042",
            "partition": partition}


def build(counts: dict[str, int], run: str, partitions: int, seed: int = 7,
          now: dt.datetime | None = None, campaign_first: bool = True) -> Workload:
    """Events in a shuffled order; the campaign (if any) first or last."""
    now = now or dt.datetime.now(dt.UTC)
    work = Workload()
    transactional: list[tuple[str, dict[str, Any]]] = []
    addresses: dict[str, str] = {}
    index = 0
    for event_type, count in counts.items():
        if event_type == "marketing":
            continue
        for _ in range(count):
            event = SAMPLES[event_type](index, now)
            addresses[event["event_id"]] = _personalize(event_type, event, run, index)
            transactional.append((event_type, event))
            index += 1
    random.Random(seed).shuffle(transactional)
    marketing = counts.get("marketing", 0)
    campaign: list[tuple[str, dict[str, Any]]] = []
    if marketing:
        work.profiles = [profile(run, i, i % partitions) for i in range(marketing)]
        campaign = [("campaign.launched",
                     campaign_launched(f"bench-{run}", now, tags_any=[f"bench-{run}"]))]
    work.events = campaign + transactional if campaign_first else transactional + campaign
    for position, (event_type, event) in enumerate(work.events):
        if event_type == "campaign.launched":
            kind = EmailType.MARKETING_CAMPAIGN
            for person in work.profiles:
                key = idempotency_key(event["event_id"], kind.value, person["email"])
                work.expected[key] = Expected(PRIORITY_OF[kind], kind, position)
            continue
        kind = EMAIL_OF[event_type]
        key = idempotency_key(event["event_id"], kind.value, addresses[event["event_id"]])
        work.expected[key] = Expected(PRIORITY_OF[kind], kind, position)
    return work
