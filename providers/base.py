"""The provider contract: send one, send many, classify an error as transient or permanent.

Providers never retry, fail over or rate-limit themselves; the sender composes them.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str


class ProviderError(Exception):
    """One exception root: which provider, whether a retry can help, and what it answered."""

    def __init__(self, provider: str, message: str, *, transient: bool,
                 status: int | None = None, retry_after_s: float | None = None,
                 provider_fault: bool = True) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.transient = transient
        self.status = status
        self.retry_after_s = retry_after_s
        # True: the provider is unwell (5xx, timeout, 401, 429): try the next one.
        # False: the message itself is refused (bad recipient, 400): no provider will take it.
        self.provider_fault = provider_fault


class Provider(Protocol):
    name: str

    async def send(self, message: EmailMessage) -> SendResult: ...

    async def send_many(self, messages: Sequence[EmailMessage]
                        ) -> list[SendResult | ProviderError]: ...

    def classify(self, error: BaseException) -> ProviderError: ...

    async def close(self) -> None: ...


async def send_each(provider: Provider, messages: Sequence[EmailMessage]
                    ) -> list[SendResult | ProviderError]:
    """``send_many`` for providers without a multi-message API: one call each, in order."""
    results: list[SendResult | ProviderError] = []
    for message in messages:
        try:
            results.append(await provider.send(message))
        except ProviderError as err:
            results.append(err)
    return results


class BlockingPool:
    """A bounded thread pool for SDKs that block (boto3, sendgrid, requests)."""

    def __init__(self, workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provider")

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def mime_parts(message: EmailMessage) -> dict[str, Any]:
    """What JSON mail APIs need from a MIME message: addresses, subject, bodies, files, headers."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    files = [{"filename": part.get_filename(), "type": part.get_content_type(),
              "content": base64.b64encode(part.get_content()).decode()}
             for part in message.iter_attachments()]
    skip = {"from", "to", "subject", "content-type", "mime-version", "date",
            "content-transfer-encoding"}
    headers = {k: str(v) for k, v in message.items() if k.lower() not in skip}
    sender, recipient = message["From"].addresses[0], message["To"].addresses[0]
    return {"from": (sender.addr_spec, sender.display_name),
            "to": (recipient.addr_spec, recipient.display_name), "subject": str(message["Subject"]),
            "text": text.get_content() if text else "", "html": html.get_content() if html else "",
            "attachments": files, "headers": headers}
