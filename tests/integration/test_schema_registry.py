"""The session runs a real Schema Registry (Apicurio, built from Maven Central) and every
worker process resolves schema ids there: the file's versions were imported with their ids,
a newer producer's version is registered by the publisher and read by the running worker,
an older producer is read by a newer consumer, and an incompatible version is refused both by
the repo's rules and by the registry."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import Consumer, TopicPartition

from core.avro import ContractError, RegistrySchemas, SchemaRegistry
from core.schema_registry import RegistryClient, RegistryError
from core.settings import SCHEMA_DIR
from flowmail.publisher import Publisher
from flowmail.samples import user_created
from flowmail.schema_import import SchemaImportError, import_file_ids
from processors.keys import idempotency_key
from tests.integration.helpers import end_offsets, outbox, poll

NEWER = Path(__file__).resolve().parent.parent / "schemas_v2"
SUBJECT = "user.created-value"


@pytest.fixture(scope="module")
def client(stack, settings) -> RegistryClient:
    assert stack.with_registry and settings.schema_registry_url == stack.registry.url
    return RegistryClient(settings.schema_registry_url)


def _canonical(text: str) -> object:
    return fastavro.parse_schema(json.loads(text), named_schemas={})


def test_every_file_version_is_in_the_registry_under_its_file_id(client, settings):
    file = SchemaRegistry(SCHEMA_DIR / "registry.json")
    for version in file.versions():
        held = client.by_id(version.schema_id)
        assert held is not None, f"id {version.schema_id} missing"
        assert (held.subject, held.version) == (version.subject, version.version)
        assert _canonical(held.schema) == version.parsed
    assert client.compatibility() == "FULL"
    again = import_file_ids(settings.schema_registry_url, file)  # idempotent
    assert again.imported == [] and len(again.present) == len(file.versions())


def test_a_registry_that_holds_other_ids_is_refused_and_left_alone(client, settings, tmp_path):
    other = {"type": "record", "name": "Scratch", "fields": [{"name": "a", "type": "string"}]}
    (tmp_path / "scratch.avsc").write_text(json.dumps(other))
    (tmp_path / "registry.json").write_text(json.dumps({"subjects": {"scratch-value": [
        {"version": 1, "id": 111, "file": "scratch.avsc"}]}}))  # 111 is user.created v1's
    before = client.subjects()
    with pytest.raises(SchemaImportError,
                       match=r"id 111 holds another schema \(user\.created-value v1\)"):
        import_file_ids(settings.schema_registry_url, SchemaRegistry(tmp_path / "registry.json"))
    assert client.subjects() == before


def _welcome_sent(settings, event) -> bool:
    key = idempotency_key(event["event_id"], "welcome", event["user"]["email"])
    return bool(outbox(settings.outbox_dir).get(key))


def test_a_newer_producer_version_is_registered_and_read_by_the_running_worker(
        worker, client, settings):
    """user.created v2 exists only in the producer's schemas: the publisher registers it
    (the repo's rules and the registry's both pass it) and the worker, which knows v1 only,
    resolves the new id through the registry and sends the welcome email."""
    newer = RegistrySchemas(NEWER / "registry.json", RegistryClient(settings.schema_registry_url))
    event = {**user_created(9101), "signup_channel": "app", "schema_version": 2}
    with Publisher(settings.kafka_bootstrap, schemas=newer) as publisher:
        publisher.publish("user.created", event)
    written = newer.latest(SUBJECT)
    assert written.version == 2
    file_ids = {v.schema_id for v in SchemaRegistry(SCHEMA_DIR / "registry.json").versions()}
    assert written.schema_id not in file_ids  # the registry assigned it
    latest = client.latest(SUBJECT)
    assert latest is not None and latest.schema_id == written.schema_id
    poll(lambda: _welcome_sent(settings, event), "the welcome email of a v2 event", 90)


def test_an_older_producer_is_read_by_a_newer_consumer(worker, client, settings):
    """The repo's publisher (user.created v1, id 111) writes while a consumer that knows v2
    reads: the new field takes its default. The worker sends the email as before."""
    since = end_offsets(settings.kafka_bootstrap, "user.created")
    event = user_created(9102)
    with Publisher(settings.kafka_bootstrap,
                   schemas=RegistrySchemas(SCHEMA_DIR / "registry.json",
                                           RegistryClient(settings.schema_registry_url))
                   ) as publisher:
        publisher.publish("user.created", event)
    newer = RegistrySchemas(NEWER / "registry.json", RegistryClient(settings.schema_registry_url))
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                         "group.id": "flowmail-test-registry-reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition("user.created", p, o) for p, o in since.items()])
    found: list[dict] = []

    def read() -> bool:
        for message in consumer.consume(100, timeout=0.5):
            if message.error() is None:
                found.append(newer.decode(SUBJECT, message.value()))
        return any(r["event_id"] == event["event_id"] for r in found)

    try:
        poll(read, "the v1 event read by a v2 consumer")
    finally:
        consumer.close()
    record = next(r for r in found if r["event_id"] == event["event_id"])
    assert record["signup_channel"] is None and record["user"]["email"] == event["user"]["email"]
    poll(lambda: _welcome_sent(settings, event), "the welcome email of a v1 event", 90)


def test_an_incompatible_version_is_refused_by_the_repo_rules_and_by_the_registry(
        client, settings):
    before = client.latest(SUBJECT)
    bad = RegistrySchemas(NEWER / "incompatible.json", RegistryClient(settings.schema_registry_url))
    with pytest.raises(ContractError) as refused:
        bad.latest(SUBJECT)
    assert refused.value.reason == "incompatible_schema"
    assert "marketing_opt_in" in refused.value.detail
    text = (NEWER / "user_created.incompatible.avsc").read_text()
    assert client.compatible(SUBJECT, text) is False
    with pytest.raises(RegistryError) as registry_refused:
        client.register(SUBJECT, text)  # around the repo's check: the registry says no too
    assert registry_refused.value.status == 409
    assert client.latest(SUBJECT) == before

