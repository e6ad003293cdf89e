"""The provider contract: send one, send many, classify an error as transient or permanent.

Providers never retry, fail over or rate-limit themselves; the sender composes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str


class ProviderError(Exception):
    """One exception root: which provider, whether a retry can help, and what it answered."""

    def __init__(self, provider: str, message: str, *, transient: bool,
                 status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.transient = transient
        self.status = status
        self.retry_after_s = retry_after_s


class Provider(Protocol):
    name: str

    async def send(self, message: EmailMessage) -> SendResult: ...

    async def send_many(self, messages: Sequence[EmailMessage]
                        ) -> list[SendResult | ProviderError]: ...

    def classify(self, error: BaseException) -> ProviderError: ...

    async def close(self) -> None: ...
