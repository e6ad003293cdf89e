"""Everything derived from the catalogue (core/catalogue.py) agrees with it: a new event that
misses one of these places fails here, not in production."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from core.avro import registry
from core.catalogue import BY_TOPIC, CATALOGUE, CATEGORY_OF, PRIORITY_OF, EmailType, path_get
from core.settings import PROJECT_ROOT, TEMPLATE_DIR, Settings
from flowmail.preview import example_event
from flowmail.publisher import default_key, from_json
from flowmail.samples import SAMPLES
from processors.routing import ROUTES, route
from streams.topics import topic_specs

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def test_one_declaration_per_topic_and_per_email_type():
    assert len(BY_TOPIC) == len(CATALOGUE)
    assert sorted(e.email_type for e in CATALOGUE) == sorted(EmailType)
    assert set(PRIORITY_OF) == set(CATEGORY_OF) == set(EmailType)


def test_every_event_has_a_route_and_no_route_is_undeclared():
    assert set(ROUTES) == set(BY_TOPIC)


def test_topics_and_subjects_come_from_the_catalogue():
    specs = {spec.name: spec for spec in topic_specs(Settings())}
    for declared in CATALOGUE:
        assert specs[declared.topic].subject == declared.subject
        assert registry().latest(declared.subject)  # a registered schema


@pytest.mark.parametrize("declared", CATALOGUE, ids=lambda d: d.topic)
def test_the_example_fits_the_schema_the_key_and_the_route(declared):
    """The example (preview data) is valid, has the declared key and recipient, and routes to
    the declared email type and priority."""
    record = from_json(registry().latest(declared.subject).parsed, declared.example())
    registry().encode(declared.subject, record)
    assert default_key(declared.topic, record) == str(path_get(record, declared.key))
    assert default_key(declared.topic, record) != record["event_id"]
    if declared.recipient:
        now = int(NOW.timestamp() * 1000)
        if declared.topic == "user.password_reset_requested":
            record["expires_at"] = NOW + dt.timedelta(minutes=30)
        commands = route(declared.topic, record, now, now)
        assert [(c.email_type, c.priority) for c in commands] == [
            (declared.email_type, declared.priority)]
        assert commands[0].recipient == path_get(record, declared.recipient)
    assert example_event(declared.email_type) == declared.example()


@pytest.mark.parametrize("declared", CATALOGUE, ids=lambda d: d.topic)
def test_every_event_has_a_sample_and_templates(declared):
    if declared.recipient:
        event = SAMPLES[declared.topic](3, NOW)
        registry().encode(declared.subject, event)
        assert default_key(declared.topic, event) == str(path_get(event, declared.key))
    folder = TEMPLATE_DIR / declared.email_type.value
    assert folder.is_dir(), f"templates/{declared.email_type.value}/ is missing"


def test_the_contracts_table_says_what_the_catalogue_says():
    text = (PROJECT_ROOT / "docs" / "contracts.md").read_text()
    rows = {m.group(1): (m.group(2), m.group(3)) for m in re.finditer(
        r"^\| `([a-z_.]+)` \| `[^`]+` \| `([a-z_.]+)` \| [^|]+ \| (\w+) \|$", text, re.M)}
    assert rows == {d.topic: (".".join(d.key), d.priority.value) for d in CATALOGUE}
