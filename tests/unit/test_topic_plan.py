from core.settings import load_settings
from streams.topic_admin import Existing, plan
from streams.topics import TopicSpec, topic_specs


def spec(partitions=3, compacted=False):
    return TopicSpec("t", partitions, "doc", compacted=compacted, retention_ms=1000)


def test_missing_topic_is_created():
    [change] = plan([spec()], {})
    assert change.action == "create"


def test_matching_topic_needs_nothing():
    current = Existing(3, {"cleanup.policy": "delete", "retention.ms": "1000"})
    assert plan([spec()], {"t": current}) == []


def test_partitions_grow_but_never_shrink():
    current = Existing(3, {"cleanup.policy": "delete", "retention.ms": "1000"})
    assert [c.action for c in plan([spec(6)], {"t": current})] == ["grow"]
    [refusal] = plan([spec(2)], {"t": current})
    assert refusal.action == "refuse" and "never shrink" in refusal.detail


def test_config_drift_is_fixed():
    current = Existing(3, {"cleanup.policy": "delete", "retention.ms": "5"})
    [change] = plan([spec()], {"t": current})
    assert change.action == "configure" and "retention.ms: 5 -> 1000" in change.detail


def test_every_flowmail_topic_is_declared_once():
    names = [s.name for s in topic_specs(load_settings({}))]
    assert len(names) == len(set(names))
    for required in ["email.critical", "email.transactional", "email.marketing", "email.dlq",
                     "email.delivery", "email.retry.critical", "order.placed",
                     "flowmail-ledger_transactional-changelog", "email.suppressions"]:
        assert required in names


def test_partitions_come_from_settings():
    specs = {s.name: s for s in topic_specs(load_settings({"FLOWMAIL_PARTITIONS_EMAIL": "12"}))}
    assert specs["email.marketing"].partitions == 12
    assert specs["flowmail-ledger_marketing-changelog"].partitions == 12
