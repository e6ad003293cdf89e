"""Every topic flowmail uses, declared once: name, partitions, cleanup, retention, codec.

``flowmail topics apply`` creates them from this list; agents get Faust topics from it.
Values travel as raw bytes through Faust and are decoded by ``core.avro`` inside the
agents, so a bad payload becomes a dead letter instead of an exception inside Faust.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from core.catalogue import CATALOGUE, CONSENT_CHANGED, ERASURE_REQUESTED
from core.settings import Settings
from core.vocab import Priority

if TYPE_CHECKING:
    import faust

DLQ = "email.dlq"
DELIVERY = "email.delivery"
ALERTS = "email.alerts"
SUPPRESSIONS = "email.suppressions"
PROFILES = "user.profiles"
CAMPAIGN_FANOUT = "campaign.fanout"
CAMPAIGN_CONTROL = "campaign.control"
CONSENT = CONSENT_CHANGED.topic
ERASURE = ERASURE_REQUESTED.topic
ERASURES = "privacy.erasures"
SEEN_TOKENS = "webhooks.seen_tokens"
ANOMALY_COUNTS = "email.anomaly_counts"
COMMAND_SUBJECT = "email.command-value"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    doc: str
    subject: str | None = None  # Avro subject of the value; None: raw bytes (DLQ) or JSON
    compacted: bool = False
    retention_ms: int | None = None
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        config = {"cleanup.policy": "compact" if self.compacted else "delete"}
        if self.retention_ms is not None and not self.compacted:
            config["retention.ms"] = str(self.retention_ms)
        return {**config, **self.extra_config}


def ledger_table(priority: Priority) -> str:
    return f"ledger_{priority.value}"


def ledger_changelog(app_id: str, priority: Priority) -> str:
    """Faust names a table's changelog ``<app id>-<table>-changelog``."""
    return f"{app_id}-{ledger_table(priority)}-changelog"


def campaign_runs_changelog(app_id: str) -> str:
    """The runs are an app's state, like its ledgers: two apps on one cluster (blue/green, a
    benchmark) each keep their own."""
    return f"{app_id}-campaign_runs-changelog"


@dataclass(frozen=True)
class ErasureLimits:
    """Topic settings that make a person's address unreadable within the erasure bound in
    every topic that can hold it (README: Erasure). A delete-policy topic drops a segment
    once its newest record is older than the retention, and rolls segments at least every
    ``segment_ms``, so a record is gone within retention + segment (+ the broker's retention
    check interval and file deletion delay, which the margin covers); a compacted one compacts
    a segment at the latest ``max.compaction.lag.ms`` after its records were written (the
    active segment is rolled by the changelog stores' roll markers, streams/changelog_store)
    and keeps a tombstone for ``delete.retention.ms``."""

    bound_ms: int
    segment_ms: int

    @classmethod
    def of(cls, settings: Settings) -> ErasureLimits:
        bound = settings.erasure_bound_s * 1000
        return cls(bound, max(1000, bound // 20))

    def retention(self, wanted: int) -> int:
        """At most the bound less four segments: one filling, then the broker's retention
        check (every 5 s on the local stack, 5 min by default) and file deletion delay."""
        return max(1000, min(wanted, self.bound_ms - 4 * self.segment_ms))

    def delete_config(self) -> dict[str, str]:
        return {"segment.ms": str(self.segment_ms)}

    def compact_config(self) -> dict[str, str]:
        return {"segment.ms": str(self.segment_ms),
                "max.compaction.lag.ms": str(self.bound_ms // 4),
                "delete.retention.ms": str(self.segment_ms),
                "min.cleanable.dirty.ratio": "0.01"}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Topics marked personal (an address in clear can be in them) follow the erasure limits."""
    limits = ErasureLimits.of(settings)
    retention = limits.retention(settings.retention_ms)
    personal = limits.delete_config()
    specs = [TopicSpec(event.topic, settings.partitions_domain, f"domain events: {event.doc}",
                       subject=event.subject, retention_ms=retention, extra_config=personal)
             for event in CATALOGUE]
    for priority in Priority:
        specs += [
            TopicSpec(priority.topic, settings.partitions_email,
                      f"{priority.value} email commands, keyed by recipient key",
                      subject=COMMAND_SUBJECT, retention_ms=retention, extra_config=personal),
            TopicSpec(priority.retry_topic, settings.partitions_email,
                      f"{priority.value} commands waiting for a retry", subject=COMMAND_SUBJECT,
                      retention_ms=retention, extra_config=personal),
            TopicSpec(ledger_changelog(settings.app_id, priority), settings.partitions_email,
                      f"idempotency ledger of {priority.value} sends (Faust table changelog)",
                      compacted=True),
        ]
    specs += [
        TopicSpec(DLQ, 1, "dead letters: original bytes + reason/source headers",
                  retention_ms=limits.retention(settings.retention_ms * 4),
                  extra_config=personal),
        TopicSpec(DELIVERY, settings.partitions_delivery, "delivery outcomes, one per attempt",
                  subject=f"{DELIVERY}-value", retention_ms=retention),
        TopicSpec(ALERTS, 1, "operational alerts (failed critical mail, anomalies)",
                  retention_ms=retention, extra_config=personal),
        # Changes, not states: two scopes of one recipient share a key, so compaction would
        # drop one. Kept forever (small and rare); the table's own changelog is compacted.
        TopicSpec(SUPPRESSIONS, settings.partitions_email,
                  "suppression changes by recipient key (bounces, complaints, unsubscribes)",
                  retention_ms=-1),
        TopicSpec(PROFILES, settings.partitions_domain,
                  "profiles table changelog: latest profile per user id", compacted=True,
                  extra_config=limits.compact_config()),
        # one partition: its one consumer is the one place the counts are summed
        TopicSpec(ANOMALY_COUNTS, 1, "delivery counts per batch and minute, for the anomaly "
                  "rules", retention_ms=24 * 3600 * 1000),
        TopicSpec(SEEN_TOKENS, 1, "webhook tokens accepted (replay guard of every replica)",
                  extra_config={"cleanup.policy": "compact,delete",
                                "retention.ms": str(2 * 24 * 3600 * 1000)}),
        TopicSpec(CAMPAIGN_FANOUT, settings.partitions_domain,
                  "a launched campaign, copied to every partition for the local fan-out",
                  subject="campaign.launched-value", retention_ms=retention),
        TopicSpec(CAMPAIGN_CONTROL, settings.partitions_domain,
                  "pause, resume, cancel and A/B winners of campaigns, keyed by campaign id "
                  "(copied to every partition by the router)",
                  subject=f"{CAMPAIGN_CONTROL}-value", retention_ms=retention),
        # The record of consent (who agreed to what, when, where, to which wording): kept
        # forever; keyed by user id and partitioned as user.created, so one router holds a
        # person's profile and their consent changes.
        TopicSpec(CONSENT, settings.partitions_domain, CONSENT_CHANGED.doc,
                  subject=CONSENT_CHANGED.subject, retention_ms=-1),
        TopicSpec(ERASURE, settings.partitions_domain, ERASURE_REQUESTED.doc,
                  subject=ERASURE_REQUESTED.subject, retention_ms=retention,
                  extra_config=personal),
        TopicSpec(ERASURES, 1, "what each erasure did (no personal data): the record of "
                  "erasures", subject=f"{ERASURES}-value", retention_ms=-1),
        TopicSpec(campaign_runs_changelog(settings.app_id), settings.partitions_domain,
                  "campaign runs changelog: schedule, phase, cursor and counts per partition",
                  compacted=True),
    ]
    return specs


def spec_by_name(settings: Settings) -> dict[str, TopicSpec]:
    return {spec.name: spec for spec in topic_specs(settings)}


def faust_topic(app: faust.App, spec: TopicSpec) -> faust.TopicT:
    return app.topic(spec.name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", partitions=spec.partitions,
                     compacting=spec.compacted or None)


def faust_topics(app: faust.App, settings: Settings, names: list[str]) -> faust.TopicT:
    """One Faust topic (channel) over several names with the same codec."""
    specs = spec_by_name(settings)
    missing = [n for n in names if n not in specs]
    if missing:
        raise ValueError(f"topics not declared in streams/topics.py: {missing}")
    return app.topic(*names, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw")
