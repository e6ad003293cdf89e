"""The provider contract: send one, send many, classify an error as transient or permanent.

Providers never retry, fail over or rate-limit themselves; the sender composes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from processors.message import OutgoingEmail

T = TypeVar("T")


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str


class ProviderError(Exception):
    """One exception root: which provider, whether a retry can help, and what it answered."""

    def __init__(self, provider: str, message: str, *, transient: bool,
                 status: int | None = None, retry_after_s: float | None = None,
                 provider_fault: bool = True, bounce: bool = False) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.transient = transient
        self.status = status
        self.retry_after_s = retry_after_s
        # True: the provider is unwell (5xx, timeout, 401, 429): try the next one.
        # False: the message itself is refused (bad recipient, 400): no provider will take it.
        self.provider_fault = provider_fault
        # the receiving server said the address does not exist: a hard bounce at send time
        self.bounce = bounce


class Provider(Protocol):
    name: str

    async def send(self, message: OutgoingEmail) -> SendResult: ...

    async def send_many(self, messages: Sequence[OutgoingEmail]
                        ) -> list[SendResult | ProviderError]: ...

    def classify(self, error: BaseException) -> ProviderError: ...

    async def close(self) -> None: ...


async def send_each(provider: Provider, messages: Sequence[OutgoingEmail]
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
