"""How flowmail reaches OpenSearch: the one place its connections are made from settings.

Managed OpenSearch takes TLS with basic auth (Aiven, a company cluster with the security
plugin) or AWS SigV4 (Amazon OpenSearch Service, managed domains and serverless). The sink's
client and every plain HTTP call (demo, reports, benchmark) get the same URL, trust and
credentials from here; the password never reaches a log line.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import requests
from opensearchpy.exceptions import SerializationError
from opensearchpy.serializer import JSONSerializer

from core import json_text
from core.settings import Settings, SettingsError


def _verify(settings: Settings) -> bool | str:
    if not settings.opensearch_verify_certs:
        return False
    return settings.opensearch_ca_file or True


def _checked(settings: Settings) -> None:
    scheme = urlsplit(settings.opensearch_url).scheme
    if scheme not in {"http", "https"}:
        raise SettingsError(f"FLOWMAIL_OPENSEARCH_URL={settings.opensearch_url!r}: use http:// "
                            "or https://")
    if settings.opensearch_username and settings.opensearch_aws_region:
        raise SettingsError("FLOWMAIL_OPENSEARCH_USERNAME and FLOWMAIL_OPENSEARCH_AWS_REGION "
                            "are both set: use basic auth or SigV4, not both")
    if bool(settings.opensearch_username) != bool(settings.opensearch_password):
        raise SettingsError("basic auth needs FLOWMAIL_OPENSEARCH_USERNAME and "
                            "FLOWMAIL_OPENSEARCH_PASSWORD (or ..._PASSWORD_FILE)")
    if (settings.opensearch_username or settings.opensearch_aws_region) and scheme != "https":
        raise SettingsError(f"credentials for OpenSearch over {scheme}:// would travel in the "
                            "clear: use an https:// FLOWMAIL_OPENSEARCH_URL")


def _aws_credentials() -> Any:
    import boto3

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise SettingsError("FLOWMAIL_OPENSEARCH_AWS_REGION is set but boto3 finds no AWS "
                            "credentials (environment, profile, or the instance's role)")
    return credentials


class FastJSONSerializer(JSONSerializer):
    """Answers read by core/json_text: a bulk answer has an item per document, and the
    sink reads one for every batch it indexes."""

    def loads(self, s: str) -> Any:
        try:
            return json_text.loads(s)
        except (ValueError, TypeError) as err:
            raise SerializationError(s, err) from err


def async_client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``opensearchpy.AsyncOpenSearch``."""
    _checked(settings)
    url = settings.opensearch_url
    options: dict[str, Any] = {"hosts": [url], "serializer": FastJSONSerializer()}
    if urlsplit(url).scheme == "https":
        verify = _verify(settings)
        options.update(use_ssl=True, verify_certs=bool(verify), ssl_show_warn=False)
        if isinstance(verify, str):
            options["ca_certs"] = verify
        if not verify:
            options["ssl_assert_hostname"] = False
    if settings.opensearch_username:
        options["http_auth"] = (settings.opensearch_username, settings.opensearch_password)
    elif settings.opensearch_aws_region:
        from opensearchpy import AWSV4SignerAsyncAuth

        options["http_auth"] = AWSV4SignerAsyncAuth(_aws_credentials(),
                                                    settings.opensearch_aws_region,
                                                    settings.opensearch_aws_service)
    return options


class _Session(requests.Session):
    """Its ``verify`` wins over REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE, which requests would
    otherwise let replace a session's CA file (the cluster's CA is what to trust here)."""

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None:
            merged["verify"] = self.verify
        return merged


def http_session(settings: Settings) -> requests.Session:
    """A ``requests`` session with the same trust and credentials, for plain HTTP calls."""
    _checked(settings)
    session = _Session()
    session.verify = _verify(settings)
    if settings.opensearch_username:
        session.auth = (settings.opensearch_username, settings.opensearch_password)
    elif settings.opensearch_aws_region:
        from opensearchpy import RequestsAWSV4SignerAuth

        session.auth = RequestsAWSV4SignerAuth(_aws_credentials(),
                                               settings.opensearch_aws_region,
                                               settings.opensearch_aws_service)
    return session


def search_events(settings: Settings, body: dict[str, Any], timeout: float = 30.0
                  ) -> requests.Response:
    """One search over every analytics index (``<prefix>-*``; none yet is no error); the
    caller decides what a status other than 200 means to it."""
    return http_session(settings).post(
        f"{settings.opensearch_url.rstrip('/')}/{settings.index_prefix}-*/_search",
        params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        json=body, timeout=timeout)



def delete_events(settings: Settings, body: dict[str, Any], timeout: float = 60.0,
                  page: int = 1000) -> int:
    """Delete the analytics documents ``body``'s query matches, in every index, refreshed so
    a search right after sees them gone; returns how many. A search and a bulk delete per
    page: ``_delete_by_query`` needs the reindex module, which not every node has. Raises on
    any failure (nothing is reported deleted that was not)."""
    session, base = http_session(settings), settings.opensearch_url.rstrip("/")
    deleted = 0
    while True:
        found = session.post(f"{base}/{settings.index_prefix}-*/_search",
                             params={"ignore_unavailable": "true", "allow_no_indices": "true"},
                             json={**body, "size": page, "_source": False}, timeout=timeout)
        found.raise_for_status()
        hits = found.json()["hits"]["hits"]
        if not hits:
            return deleted
        lines = "".join(json.dumps({"delete": {"_index": h["_index"], "_id": h["_id"]}}) + "\n"
                        for h in hits)
        answer = session.post(f"{base}/_bulk", params={"refresh": "true"}, data=lines,
                              headers={"Content-Type": "application/x-ndjson"},
                              timeout=timeout)
        answer.raise_for_status()
        if answer.json().get("errors"):
            raise RuntimeError("OpenSearch refused some deletions")
        deleted += len(hits)
