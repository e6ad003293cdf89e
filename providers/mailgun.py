"""Mailgun messages API through ``requests``: the MIME message as is (messages.mime), so
headers and attachments survive byte for byte. EU or US base URL from settings."""

from __future__ import annotations

import json
from email.utils import formataddr
from typing import TYPE_CHECKING, Any

import requests

from processors.bulk import BulkMessage
from processors.campaigns import unsubscribe_link, unsubscribe_parts
from processors.feedback import ECHO_PREFIX, echo_fields
from providers.base import BlockingPool, Provider, ProviderError
from providers.http_errors import from_status

if TYPE_CHECKING:
    from core.settings import Settings
    from processors.message import OutgoingEmail

PLACEHOLDER = "%recipient.{}%"
# flowmail tracks opens and clicks itself (processors/tracking.py): Mailgun's is off
NO_TRACKING = {"o:tracking": "no", "o:tracking-clicks": "no", "o:tracking-opens": "no"}


class MailgunProvider(Provider):
    name = "mailgun"
    cost_per_1k = 0.80
    region = "eu"
    rate_per_s = 100.0
    bulk_placeholder = PLACEHOLDER
    bulk_max = 1000  # recipients per batch sending call

    @classmethod
    def from_settings(cls, settings: Settings, pool: BlockingPool) -> MailgunProvider:
        return cls(settings.mailgun_api_key, settings.mailgun_domain, settings.mailgun_base_url,
                   pool, settings.provider_timeout_s)

    def __init__(self, api_key: str, domain: str, base_url: str, pool: BlockingPool,
                 timeout_s: float) -> None:
        if not api_key or not domain:
            raise ValueError("FLOWMAIL_MAILGUN_API_KEY and FLOWMAIL_MAILGUN_DOMAIN must be set")
        self._url = f"{base_url.rstrip('/')}/v3/{domain}/messages.mime"
        self._batch_url = f"{base_url.rstrip('/')}/v3/{domain}/messages"
        self._session = requests.Session()
        self._session.auth = ("api", api_key)
        self._pool, self._timeout = pool, timeout_s

    def _post(self, message: OutgoingEmail) -> str:
        return self._call(self._url, data={"to": [message.recipient[0]], **NO_TRACKING,
                                           **{f"v:{k}": v for k, v in message.echo.items()}},
                          files={"message": ("message.mime", message.raw,
                                             "message/rfc822")})

    def _call(self, url: str, **body: Any) -> str:
        """POST, map transport and HTTP errors to ProviderError, return Mailgun's id."""
        try:
            response = self._session.post(url, timeout=self._timeout, **body)
        except requests.RequestException as err:
            raise ProviderError(self.name, f"{type(err).__name__}: {err}", transient=True) from err
        if response.status_code != 200:
            raise from_status(self.name, response.status_code, response.text,
                              response.headers.get("Retry-After"))
        return str(response.json().get("id", ""))

    async def deliver(self, message: OutgoingEmail) -> str:
        return await self._pool.run(self._post, message)

    async def deliver_bulk(self, bulk: BulkMessage, sender: tuple[str, str]) -> list[str]:
        """recipient-variables: one call, each recipient sees only its own address."""
        rendered = bulk.rendered
        variables = {r.command.recipient: {**r.values, "key": r.command.idempotency_key}
                     for r in bulk.recipients}
        base = unsubscribe_parts(bulk.recipients[0].command.template_data)[0]
        form = {
            "from": formataddr((sender[1], sender[0])),
            "to": ",".join(r.command.recipient for r in bulk.recipients),  # one field, not 1,000
            "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
            "recipient-variables": json.dumps(variables),
            "h:X-Flowmail-Idempotency-Key": PLACEHOLDER.format("key"),
            "h:X-Flowmail-Email-Type": bulk.recipients[0].command.email_type.value,
            "h:List-Unsubscribe": f"<{unsubscribe_link(base, PLACEHOLDER.format('token'))}>",
            "h:List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            **NO_TRACKING,
            # returned with every webhook event; the key differs per recipient
            **{f"v:{k}": v for k, v in echo_fields(bulk.recipients[0].command).items()},
            f"v:{ECHO_PREFIX}key": PLACEHOLDER.format("key"),
        }
        message_id = await self._pool.run(lambda: self._call(self._batch_url, data=form))
        return [message_id for _ in bulk.recipients]

    async def close(self) -> None:
        self._session.close()
