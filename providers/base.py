"""The provider contract: send one, send a batch, classify an error as transient or permanent.

Providers never retry, fail over or rate-limit themselves; the sender composes them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:
    from core.settings import Settings
    from processors.bulk import BulkMessage
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


class Provider(ABC):
    """A provider: one module, one subclass. The base owns the common sequence (send one,
    send a batch, turn any failure into a classified ``ProviderError``) and the registry;
    a subclass says how to reach its API and declares what routing needs to know.

    Declared by every subclass (a missing one fails at import): ``name``; ``cost_per_1k``,
    its list price per 1,000 emails (routing scores cost; FLOWMAIL_PROVIDER_COSTS overrides);
    ``region`` it sends from (FLOWMAIL_PROVIDER_REGIONS overrides); ``rate_per_s`` it
    accepts (FLOWMAIL_PROVIDER_RATES overrides). With a batch API: ``bulk_placeholder`` (its
    per-recipient substitution syntax, ``{}`` for the name), ``bulk_max`` recipients a call,
    and ``deliver_bulk``.
    """

    DECLARED: ClassVar[tuple[str, ...]] = ("name", "cost_per_1k", "region", "rate_per_s")
    registered: ClassVar[dict[str, type[Provider]]] = {}

    name: ClassVar[str]
    cost_per_1k: ClassVar[float]
    region: ClassVar[str]
    rate_per_s: ClassVar[float]
    bulk_placeholder: ClassVar[str | None] = None
    bulk_max: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [attribute for attribute in cls.DECLARED if not hasattr(cls, attribute)]
        if missing:
            raise TypeError(f"provider {cls.__name__} must declare {', '.join(missing)}")
        Provider.registered[cls.name] = cls

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings, pool: BlockingPool) -> Provider:
        """The provider configured by FLOWMAIL_* settings; bad or missing ones raise here."""

    @abstractmethod
    async def deliver(self, message: OutgoingEmail) -> str:
        """Send one message; return the provider's message id."""

    async def deliver_bulk(self, bulk: BulkMessage, sender: tuple[str, str]) -> list[str]:
        """Send one batch; a message id per recipient, in order. Without a batch API (no
        ``bulk_placeholder``) the chain never asks; if something does, the answer is a
        permanent refusal, not a crash."""
        raise ProviderError(self.name, "no batch API", transient=False, provider_fault=False)

    def classify(self, error: BaseException) -> ProviderError:
        """Transient (retry, fail over) or permanent; the default: a transport failure."""
        if isinstance(error, ProviderError):
            return error
        return ProviderError(self.name, f"{type(error).__name__}: {error}", transient=True)

    @property
    def supports_bulk(self) -> bool:
        return self.bulk_placeholder is not None

    async def send(self, message: OutgoingEmail) -> SendResult:
        try:
            return SendResult(self.name, await self.deliver(message))
        except Exception as err:
            raise self.classify(err) from err

    async def send_bulk(self, bulk: BulkMessage, sender: tuple[str, str]) -> list[SendResult]:
        """All recipients of ``bulk`` in one call (at most ``bulk_max``): all accepted, or one
        error for the whole batch."""
        if len(bulk.recipients) > self.bulk_max:
            raise ValueError(f"{self.name} takes at most {self.bulk_max} recipients a call")
        try:
            ids = await self.deliver_bulk(bulk, sender)
        except Exception as err:
            raise self.classify(err) from err
        return [SendResult(self.name, message_id) for message_id in ids]

    async def close(self) -> None:
        return None


class BlockingPool:
    """A bounded thread pool for SDKs that block (boto3, sendgrid, requests)."""

    def __init__(self, workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provider")

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
