"""Without a registry URL the file's ids serve; a registry that does not answer is a clear,
quick error (a real HTTP connection to a port nobody listens on)."""

import socket

import pytest

from core.avro import ContractError, RegistrySchemas, SchemaRegistry, schemas_for
from core.schema_registry import RegistryClient, RegistryUnavailable
from core.settings import SCHEMA_DIR

SUBJECT = "user.created-value"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_url_means_the_file_ids():
    schemas = schemas_for("")
    assert type(schemas) is SchemaRegistry
    assert schemas.latest(SUBJECT).schema_id == 111


def test_a_url_means_ids_from_the_registry_and_nothing_from_the_file():
    schemas = schemas_for(f"http://127.0.0.1:{closed_port()}/apis/ccompat/v7")
    assert isinstance(schemas, RegistrySchemas)
    assert schemas.reader(SUBJECT).schema_id == 111  # what this code reads with
    with pytest.raises(ContractError) as failed:
        schemas.by_id(111)  # the file's id is not trusted without the registry
    assert failed.value.reason == "registry_unavailable"


def test_an_unreachable_registry_fails_reading_and_writing_with_a_reason():
    client = RegistryClient(f"http://127.0.0.1:{closed_port()}/apis/ccompat/v7",
                            timeout_s=1.0, attempts=2)
    schemas = RegistrySchemas(SCHEMA_DIR / "registry.json", client)
    with pytest.raises(ContractError) as reading:
        schemas.decode(SUBJECT, b"\x00\x00\x00\x00\x6f" + b"\x00" * 10)
    assert reading.value.reason == "registry_unavailable"
    with pytest.raises(ContractError) as writing:
        schemas.latest(SUBJECT)
    assert writing.value.reason == "registry_unavailable"
    with pytest.raises(RegistryUnavailable):
        client.subjects()
