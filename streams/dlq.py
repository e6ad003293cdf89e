"""The dead-letter policy: every rejected input keeps its bytes, its reason and its source.

Agents hand every per-message failure here instead of raising: an agent that raises stops
consuming while the worker stays up (a known Faust trap), so nothing may escape.

A dead letter always fits: a value larger than FLOWMAIL_MAX_PAYLOAD_BYTES keeps its first
PREFIX_BYTES plus its size and sha256 (``flowmail dlq replay`` fetches the original from its
source coordinates while the source retains it). If the broker refuses the dead letter, a
minimal one (headers and source coordinates only) is written; if even that is refused, it is
retried with backoff and the agent does not move past the record, so nothing is skipped.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from core.avro import ContractError
from core.vocab import RejectReason
from processors.errors import RejectedInput
from streams import metrics

if TYPE_CHECKING:
    import faust


class Source(Protocol):
    """What a dead letter records of its source (a Faust message or a SourceRecord)."""

    topic: str
    partition: int
    offset: int
    timestamp: float | int
    key: bytes | None
    value: bytes | None


Message = Source
T = TypeVar("T")
# (key, value, headers) -> returns once the broker acknowledged, raises when it refused
SendAcked = Callable[[bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[None]]


def faust_sender(topic: faust.TopicT) -> SendAcked:
    async def send_acked(key: bytes | None, value: bytes | None,
                         headers: list[tuple[str, bytes]]) -> None:
        pending = await topic.send(key=key, value=value, headers=headers)
        await pending  # the broker's acknowledgement, not just the producer's buffer
    return send_acked

log = logging.getLogger(__name__)

HEADER_PREFIX = "flowmail."
PREFIX_BYTES = 4096       # what a truncated dead letter keeps of the value
KEY_BYTES = 1024          # and of the key
RETRY_CAP_S = 30.0


def reason_of(error: BaseException) -> tuple[str, str]:
    if isinstance(error, RejectedInput):
        return error.reason.value, error.detail
    if isinstance(error, ContractError):
        return error.reason, error.detail
    return RejectReason.INTERNAL.value, f"{type(error).__name__}: {error}"[:500]


def dlq_headers(message: Message, reason: str, detail: str, error: BaseException,
                stage: str) -> list[tuple[str, bytes]]:
    values = {
        "reason": reason, "detail": detail, "error_type": type(error).__name__, "stage": stage,
        "source_topic": message.topic, "source_partition": str(message.partition),
        "source_offset": str(message.offset), "source_timestamp": str(message.timestamp),
        "failed_at": str(int(time.time() * 1000)),
    }
    return [(HEADER_PREFIX + k, v.encode("utf-8", "replace")) for k, v in values.items()]


class DeadLetters:
    def __init__(self, send_acked: SendAcked, max_value_bytes: int) -> None:
        self._send_acked = send_acked
        self.max_value_bytes = max_value_bytes

    async def attempt(self, message: Message, stage: str,
                      work: Callable[[], T | Awaitable[T]]) -> T | None:
        """The one error policy for a record's work (decode, validate, route, fan out):
        whatever it raises dead-letters the record with its reason, and the stage moves on
        to the next record; None then. Stages never write their own try/except for this."""
        try:
            result = work()
            if inspect.isawaitable(result):
                result = await result
        except Exception as err:  # noqa: BLE001 - the policy: dead-letter, never stop a stage
            await self.reject(message, err, stage=stage)
            return None
        return result  # type: ignore[return-value]

    async def reject(self, message: Message, error: BaseException, stage: str) -> None:
        """Publish the original key and value with reason headers; log without personal data.
        Returns only once a dead letter (full, truncated or minimal) is acknowledged."""
        reason, detail = reason_of(error)
        if reason == RejectReason.INTERNAL.value:
            log.error("internal error at %s on %s[%s]@%s:\n%s", stage, message.topic,
                      message.partition, message.offset, "".join(
                          traceback.format_exception_only(type(error), error)).strip())
        else:
            log.warning("dead-lettered %s[%s]@%s at %s: %s", message.topic, message.partition,
                        message.offset, stage, reason)
        metrics.DEAD_LETTERS.labels(stage=stage, reason=reason).inc()
        headers = dlq_headers(message, reason, detail, error, stage)
        key, value, bounds = bounded(message.key, message.value or b"", self.max_value_bytes)
        try:
            await self._send_acked(key, value, headers + bounds)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - any refusal: fall back, never stop the agent
            log.error("dead letter of %s[%s]@%s refused (%s); writing a minimal one",
                      message.topic, message.partition, message.offset, type(err).__name__)
            minimal = [*headers, *bounds, (HEADER_PREFIX + "minimal", b"true"),
                       (HEADER_PREFIX + "write_error", type(err).__name__.encode())]
            await self._send_until_acked(key, minimal, message)

    async def _send_until_acked(self, key: bytes | None, headers: list[tuple[str, bytes]],
                                message: Message) -> None:
        delay = 0.5
        while True:
            try:
                await self._send_acked(key, b"", headers)  # empty value: Kafka needs one
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - Kafka down: wait, never skip the record
                log.error("minimal dead letter of %s[%s]@%s refused (%s); retrying in %.1fs",
                          message.topic, message.partition, message.offset,
                          type(err).__name__, delay)
                metrics.DEAD_LETTER_RETRIES.inc()
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_S)


def bounded(key: bytes | None, value: bytes, max_value_bytes: int
            ) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """(key, value, extra headers): values over the bound keep a prefix, their size and hash."""
    extra: list[tuple[str, bytes]] = []
    if key is not None and len(key) > KEY_BYTES:
        extra.append((HEADER_PREFIX + "original_key_size", str(len(key)).encode()))
        key = key[:KEY_BYTES]
    if len(value) > max_value_bytes:
        extra += [(HEADER_PREFIX + "truncated", b"true"),
                  (HEADER_PREFIX + "original_size", str(len(value)).encode()),
                  (HEADER_PREFIX + "original_sha256", hashlib.sha256(value).hexdigest().encode())]
        value = value[:PREFIX_BYTES]
    return key, value, extra
