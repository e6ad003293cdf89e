"""SendGrid v3 mail send through the ``sendgrid`` library (JSON; one personalization per
message, batches of up to 1,000 personalizations when messages share their content)."""

from __future__ import annotations

import base64
import socket
import urllib.error
from typing import TYPE_CHECKING, Any

import sendgrid
from python_http_client import exceptions as http_errors

from processors.bulk import BulkMessage
from processors.feedback import echo_fields
from providers.base import BlockingPool, Provider, ProviderError
from providers.http_errors import from_status

if TYPE_CHECKING:
    from core.settings import Settings
    from processors.message import OutgoingEmail

MAX_PERSONALIZATIONS = 1000
# flowmail tracks opens and clicks itself (processors/tracking.py); SendGrid's own tracking
# would count them twice and rewrite flowmail's signed links, so it is off for every message
NO_TRACKING = {"click_tracking": {"enable": False, "enable_text": False},
               "open_tracking": {"enable": False}}


def payload(message: OutgoingEmail) -> dict[str, Any]:
    body: dict[str, Any] = {
        "from": {"email": message.sender[0], "name": message.sender[1] or None},
        "personalizations": [{"to": [{"email": message.recipient[0],
                                      "name": message.recipient[1] or None}],
                               "custom_args": message.echo}],
        "subject": message.subject,
        "content": [c for c in ({"type": "text/plain", "value": message.text},
                                {"type": "text/html", "value": message.html}) if c["value"]],
        "headers": dict(message.headers),
        "tracking_settings": NO_TRACKING,
    }
    if message.attachments:
        body["attachments"] = [{"filename": a.filename, "type": a.mime_type,
                                "content": base64.b64encode(a.content).decode()}
                               for a in message.attachments]
    return body


def bulk_payload(bulk: BulkMessage, reply_headers: dict[str, str]) -> dict[str, Any]:
    """One request, one personalization per recipient with its substitutions and headers."""
    first = bulk.recipients[0].command
    rendered = bulk.rendered
    return {
        "from": {"email": reply_headers["from_email"], "name": reply_headers["from_name"]},
        "subject": rendered.subject,
        "content": [{"type": "text/plain", "value": rendered.text},
                    {"type": "text/html", "value": rendered.html}],
        "headers": {"X-Flowmail-Email-Type": first.email_type.value,
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        "tracking_settings": NO_TRACKING,
        "personalizations": [{
            "to": [{"email": r.command.recipient, "name": r.command.recipient_name or None}],
            "substitutions": {PLACEHOLDER.format(k): v for k, v in r.values.items()},
            "custom_args": echo_fields(r.command),
            "headers": {"X-Flowmail-Idempotency-Key": r.command.idempotency_key,
                        "List-Unsubscribe": "<" + r.command.template_data["unsubscribe_url"]
                                            + ">"},
        } for r in bulk.recipients],
    }


PLACEHOLDER = "-{}-"


class SendGridProvider(Provider):
    name = "sendgrid"
    cost_per_1k = 0.60
    region = "us"
    rate_per_s = 100.0
    bulk_placeholder = PLACEHOLDER
    bulk_max = MAX_PERSONALIZATIONS

    @classmethod
    def from_settings(cls, settings: Settings, pool: BlockingPool) -> SendGridProvider:
        return cls(settings.sendgrid_api_key, settings.sendgrid_host, pool,
                   settings.provider_timeout_s)

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

    async def deliver(self, message: OutgoingEmail) -> str:
        return await self._pool.run(self._post, payload(message))

    async def deliver_bulk(self, bulk: BulkMessage, sender: tuple[str, str]) -> list[str]:
        """Personalizations: one call, each recipient sees only its own address."""
        body = bulk_payload(bulk, {"from_email": sender[0], "from_name": sender[1]})
        message_id = await self._pool.run(self._post, body)
        return [f"{message_id}.{index}" for index in range(len(bulk.recipients))]

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
