"""Put the repo's schema versions into a Schema Registry under the ids of schemas/registry.json.

Records written before a registry was configured carry the file's ids, and consumers without
one read them by those ids: importing them with the same ids keeps every record readable
both ways. A registry's own ``register`` assigns ids itself, so this uses Apicurio's import
API (explicit content and global ids). A registry that already holds a file schema under
another id is refused, never overwritten: a deployment then uses one set of ids or the
other (docs/contracts.md, "Schema Registry").
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import dataclass, field
from hashlib import sha256

import requests

from core.avro import SchemaRegistry, SchemaVersion
from core.schema_registry import RegistryClient

CCOMPAT = "/apis/ccompat/v7"
# The registry-wide rule: the repo's own (core/compat.py) holds both ways, as FULL does.
COMPATIBILITY = "FULL"


class SchemaImportError(RuntimeError):
    """The registry holds something that contradicts the file; nothing was changed."""


@dataclass
class ImportResult:
    imported: list[str] = field(default_factory=list)   # "subject v1 id 111"
    present: list[str] = field(default_factory=list)


def _label(version: SchemaVersion) -> str:
    return f"{version.subject} v{version.version} id {version.schema_id}"


def import_file_ids(url: str, schemas: SchemaRegistry) -> ImportResult:
    """Make every file version resolvable by its file id and findable under its subject."""
    client = RegistryClient(url)
    result = ImportResult()
    missing: list[SchemaVersion] = []
    conflicts: list[str] = []
    for version in schemas.versions():
        text = schemas.texts[version.schema_id]
        found = client.lookup(version.subject, text)
        if found is not None:
            if found.schema_id != version.schema_id:
                conflicts.append(f"{_label(version)} is held under id {found.schema_id}")
            else:
                result.present.append(_label(version))
            continue
        taken = client.by_id(version.schema_id)
        if taken is not None:
            conflicts.append(f"id {version.schema_id} holds another schema "
                             f"({taken.subject} v{taken.version}) than the file's "
                             f"{version.subject} v{version.version}")
            continue
        missing.append(version)
    file_ids = {v.schema_id for v in schemas.versions()}
    for subject in {v.subject for v in missing}:
        current = client.latest(subject)
        if current is not None and current.schema_id not in file_ids:
            conflicts.append(f"{subject} has versions the file does not know (latest: "
                             f"v{current.version} id {current.schema_id})")
    if conflicts:
        raise SchemaImportError(
            "the registry contradicts schemas/registry.json: " + "; ".join(conflicts[:5])
            + ". Use the registry's ids or the file's in a deployment, never both.")
    if missing:
        if not url.rstrip("/").endswith(CCOMPAT):
            raise SchemaImportError(
                f"{url} is not Apicurio's ccompat API: it cannot take explicit ids, so "
                f"{len(missing)} file versions cannot be imported with their ids")
        _apicurio_import(url.rstrip("/")[:-len(CCOMPAT)], schemas, missing)
        result.imported = [_label(v) for v in missing]
    client.set_compatibility(COMPATIBILITY)
    for version in schemas.versions():  # the proof: found by content, under the file's id
        found = client.lookup(version.subject, schemas.texts[version.schema_id])
        if found is None or found.schema_id != version.schema_id:
            raise SchemaImportError(f"after the import {_label(version)} is "
                                    f"{'missing' if found is None else f'id {found.schema_id}'}")
    return result


def _apicurio_import(base: str, schemas: SchemaRegistry, versions: list[SchemaVersion]) -> None:
    """One zip in Apicurio 2's export format: content by id, then subject versions."""
    now = int(time.time() * 1000)
    newest = {v.subject: v.version for v in schemas.versions()}
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("manifest.Manifest.json", json.dumps({
            "systemVersion": "2.4.2.Final", "systemName": "apicurio-registry",
            "systemDescription": "flowmail schemas/registry.json", "exportVersion": "1.0",
            "exportedOn": now, "exportedBy": "flowmail"}))
        for version in versions:
            data = schemas.texts[version.schema_id].encode()
            digest = sha256(data).hexdigest()
            out.writestr(f"content/{digest}.Content.json", json.dumps({
                "contentId": version.schema_id, "canonicalHash": None, "contentHash": digest,
                "artifactType": "AVRO", "serializedReferences": None}))
            out.writestr(f"content/{digest}.Content.data", data)
            name = json.loads(data).get("name")
            out.writestr(
                f"groups/default/artifacts/{version.subject}/versions/{version.version}"
                ".ArtifactVersion.json", json.dumps({
                    "globalId": version.schema_id, "groupId": None,
                    "artifactId": version.subject, "version": str(version.version),
                    "versionId": version.version, "artifactType": "AVRO", "state": "ENABLED",
                    "name": name, "description": None, "createdBy": "flowmail",
                    "createdOn": now, "labels": None, "properties": None,
                    "isLatest": newest[version.subject] == version.version,
                    "contentId": version.schema_id}))
    answer = requests.post(f"{base}/apis/registry/v2/admin/import", data=archive.getvalue(),
                           headers={"Content-Type": "application/zip"}, timeout=60)
    if not answer.ok:
        raise SchemaImportError(f"Apicurio's import refused the file's versions: "
                                f"{answer.status_code} {answer.text[:300]}")
