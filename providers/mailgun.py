"""Mailgun messages API through ``requests``: the MIME message as is (messages.mime), so
headers and attachments survive byte for byte. EU or US base URL from settings."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage

import requests

from providers.base import BlockingPool, ProviderError, SendResult
from providers.http_errors import from_status


class MailgunProvider:
    name = "mailgun"

    def __init__(self, api_key: str, domain: str, base_url: str, pool: BlockingPool,
                 timeout_s: float) -> None:
        if not api_key or not domain:
            raise ValueError("FLOWMAIL_MAILGUN_API_KEY and FLOWMAIL_MAILGUN_DOMAIN must be set")
        self._url = f"{base_url.rstrip('/')}/v3/{domain}/messages.mime"
        self._session = requests.Session()
        self._session.auth = ("api", api_key)
        self._pool, self._timeout = pool, timeout_s

    def _post(self, message: EmailMessage) -> str:
        recipients = [a.addr_spec for a in message["To"].addresses]
        try:
            response = self._session.post(
                self._url, data={"to": recipients},
                files={"message": ("message.mime", message.as_bytes(), "message/rfc822")},
                timeout=self._timeout)
        except requests.RequestException as err:
            raise ProviderError(self.name, f"{type(err).__name__}: {err}", transient=True) from err
        if response.status_code != 200:
            raise from_status(self.name, response.status_code, response.text,
                              response.headers.get("Retry-After"))
        return str(response.json().get("id", ""))

    async def send(self, message: EmailMessage) -> SendResult:
        return SendResult(self.name, await self._pool.run(self._post, message))

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
        return ProviderError(self.name, f"{type(error).__name__}: {error}", transient=True)

    async def close(self) -> None:
        self._session.close()
