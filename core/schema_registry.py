"""A client of the Confluent-compatible Schema Registry REST API (Confluent, Apicurio's
``/apis/ccompat/v7``, Karapace): what flowmail's producers and consumers need of it.

Ids never change once a registry assigned them, so callers cache what they get; a call is
retried briefly, then fails with ``RegistryUnavailable``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryError(RuntimeError):
    """The registry answered, and refused."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"schema registry answered {status}: {message}")
        self.status = status


class RegistryUnavailable(RegistryError):
    """No answer (connection refused, timeout, 5xx) after the retries."""


@dataclass(frozen=True)
class Registered:
    """One schema version as the registry holds it."""

    subject: str
    version: int
    schema_id: int
    schema: str


class RegistryClient:
    def __init__(self, url: str, timeout_s: float = 5.0, attempts: int = 3) -> None:
        self.url = url.rstrip("/")
        self.timeout_s, self.attempts = timeout_s, attempts
        self._session = requests.Session()
        self._session.headers.update({"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None,
              missing_ok: bool = False) -> Any:
        """JSON of the answer; None for a 404 when ``missing_ok``."""
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(0.2 * 2 ** attempt)
            try:
                answer = self._session.request(method, self.url + path, json=body,
                                               timeout=self.timeout_s)
            except requests.RequestException as err:
                last = f"{type(err).__name__} at {self.url}"
                continue
            if answer.status_code >= 500:
                last = f"{answer.status_code} {answer.text[:200]}"
                continue
            if answer.status_code == 404 and missing_ok:
                return None
            if not answer.ok:
                raise RegistryError(answer.status_code, _message(answer))
            return answer.json() if answer.content else None
        raise RegistryUnavailable(0, f"no answer after {self.attempts} attempts ({last})")

    def by_id(self, schema_id: int) -> Registered | None:
        """The schema with ``schema_id`` and the (first) subject version that holds it."""
        found = self._call("GET", f"/schemas/ids/{schema_id}", missing_ok=True)
        if found is None:
            return None
        where = self._call("GET", f"/schemas/ids/{schema_id}/versions", missing_ok=True) or []
        if not where:
            return None
        return Registered(where[0]["subject"], int(where[0]["version"]), schema_id,
                          found["schema"])

    def lookup(self, subject: str, schema: str) -> Registered | None:
        """The version of ``subject`` that holds exactly ``schema``, if any."""
        found = self._call("POST", f"/subjects/{subject}", {"schema": schema}, missing_ok=True)
        if found is None:
            return None
        return Registered(subject, int(found["version"]), int(found["id"]), found["schema"])

    def register(self, subject: str, schema: str) -> int:
        """The id of ``schema`` under ``subject``, registering it as a new version if needed;
        an incompatible schema is refused by the registry (409)."""
        return int(self._call("POST", f"/subjects/{subject}/versions",
                              {"schema": schema, "schemaType": "AVRO"})["id"])

    def latest(self, subject: str) -> Registered | None:
        found = self._call("GET", f"/subjects/{subject}/versions/latest", missing_ok=True)
        if found is None:
            return None
        return Registered(subject, int(found["version"]), int(found["id"]), found["schema"])

    def subjects(self) -> list[str]:
        return list(self._call("GET", "/subjects") or [])

    def compatible(self, subject: str, schema: str) -> bool:
        """The registry's own verdict on ``schema`` as the next version of ``subject``."""
        found = self._call("POST", f"/compatibility/subjects/{subject}/versions/latest",
                           {"schema": schema, "schemaType": "AVRO"}, missing_ok=True)
        return True if found is None else bool(found.get("is_compatible"))

    def set_compatibility(self, level: str) -> None:
        """The registry-wide rule new versions are checked against (BACKWARD, FULL, ...)."""
        self._call("PUT", "/config", {"compatibility": level})

    def compatibility(self) -> str:
        return str(self._call("GET", "/config")["compatibilityLevel"])


def _message(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("message", answer.text))[:300]
    except ValueError:
        return answer.text[:300]
