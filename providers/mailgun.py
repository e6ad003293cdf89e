"""Mailgun messages API through ``requests``: the MIME message as is (messages.mime), so
headers and attachments survive byte for byte. EU or US base URL from settings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from email.utils import formataddr
from typing import TYPE_CHECKING, Any

import requests

from processors.bulk import BulkMessage
from processors.feedback import ECHO_PREFIX, echo_fields
from providers.base import BlockingPool, ProviderError, SendResult, send_each
from providers.http_errors import from_status

if TYPE_CHECKING:
    from processors.message import OutgoingEmail

PLACEHOLDER = "%recipient.{}%"
# flowmail tracks opens and clicks itself (processors/tracking.py): Mailgun's is off
NO_TRACKING = {"o:tracking": "no", "o:tracking-clicks": "no", "o:tracking-opens": "no"}


class MailgunProvider:
    name = "mailgun"
    bulk_placeholder = PLACEHOLDER
    bulk_max = 1000

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

    async def send(self, message: OutgoingEmail) -> SendResult:
        return SendResult(self.name, await self._pool.run(self._post, message))

    async def send_many(self, messages: Sequence[OutgoingEmail]
                        ) -> list[SendResult | ProviderError]:
        return await send_each(self, messages)

    async def send_bulk(self, bulk: BulkMessage, sender: tuple[str, str]
                        ) -> list[SendResult]:
        """recipient-variables: one call, each recipient sees only its own address."""
        rendered = bulk.rendered
        variables = {r.command.recipient: {**r.values, "key": r.command.idempotency_key}
                     for r in bulk.recipients}
        unsubscribe = bulk.recipients[0].command.template_data["unsubscribe_url"]
        form = {
            "from": formataddr((sender[1], sender[0])),
            "to": ",".join(r.command.recipient for r in bulk.recipients),  # one field, not 1,000
            "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
            "recipient-variables": json.dumps(variables),
            "h:X-Flowmail-Idempotency-Key": PLACEHOLDER.format("key"),
            "h:X-Flowmail-Email-Type": bulk.recipients[0].command.email_type.value,
            "h:List-Unsubscribe": "<" + unsubscribe.partition("token=")[0] + "token="
                                  + PLACEHOLDER.format("token") + ">",
            "h:List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            **NO_TRACKING,
            # returned with every webhook event; the key differs per recipient
            **{f"v:{k}": v for k, v in echo_fields(bulk.recipients[0].command).items()},
            f"v:{ECHO_PREFIX}key": PLACEHOLDER.format("key"),
        }
        message_id = await self._pool.run(lambda: self._call(self._batch_url, data=form))
        return [SendResult(self.name, message_id) for _ in bulk.recipients]

    def classify(self, error: BaseException) -> ProviderError:
        if isinstance(error, ProviderError):
            return error
        return ProviderError(self.name, f"{type(error).__name__}: {error}", transient=True)

    async def close(self) -> None:
        self._session.close()
