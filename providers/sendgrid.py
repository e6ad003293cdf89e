"""SendGrid v3 mail send through the ``sendgrid`` library (JSON; one personalization per
message, batches of up to 1,000 personalizations when messages share their content)."""

from __future__ import annotations

import socket
import urllib.error
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import sendgrid
from python_http_client import exceptions as http_errors

from providers.base import BlockingPool, ProviderError, SendResult, mime_parts
from providers.http_errors import from_status

MAX_PERSONALIZATIONS = 1000


def payload(message: EmailMessage) -> dict[str, Any]:
    parts = mime_parts(message)
    body: dict[str, Any] = {
        "from": {"email": parts["from"][0], "name": parts["from"][1] or None},
        "personalizations": [{"to": [{"email": parts["to"][0],
                                      "name": parts["to"][1] or None}]}],
        "subject": parts["subject"],
        "content": [c for c in ({"type": "text/plain", "value": parts["text"]},
                                {"type": "text/html", "value": parts["html"]}) if c["value"]],
        "headers": parts["headers"],
    }
    if parts["attachments"]:
        body["attachments"] = parts["attachments"]
    return body


class SendGridProvider:
    name = "sendgrid"

    def __init__(self, api_key: str, host: str, pool: BlockingPool, timeout_s: float) -> None:
        if not api_key:
            raise ValueError("FLOWMAIL_SENDGRID_API_KEY is empty")
        self._client = sendgrid.SendGridAPIClient(api_key=api_key, host=host)
        self._client.client.timeout = timeout_s  # the library has no timeout by default
        self._pool = pool

    def _post(self, body: dict[str, Any]) -> str:
        try:
            response = self._client.client.mail.send.post(request_body=body)
        except Exception as err:
            raise self.classify(err) from err
        return response.headers.get("X-Message-Id", "")

    async def send(self, message: EmailMessage) -> SendResult:
        return SendResult(self.name, await self._pool.run(self._post, payload(message)))

    async def send_many(self, messages: Sequence[EmailMessage]
                        ) -> list[SendResult | ProviderError]:
        results: list[SendResult | ProviderError] = []
        for message in messages:
            try:
                results.append(await self.send(message))
            except ProviderError as err:
                results.append(err)
        return results

    def classify(self, error: BaseException) -> ProviderError:
        if isinstance(error, ProviderError):
            return error
        if isinstance(error, http_errors.HTTPError):
            headers = error.headers or {}
            return from_status(self.name, error.status_code, str(error.body),
                               headers.get("Retry-After"))
        if isinstance(error, socket.timeout | TimeoutError | urllib.error.URLError | OSError):
            return ProviderError(self.name, f"{type(error).__name__}: {error}", transient=True)
        return ProviderError(self.name, f"{type(error).__name__}: {error}", transient=False,
                             provider_fault=False)

    async def close(self) -> None:
        return None
