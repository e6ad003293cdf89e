"""The dead-letter policy: every rejected input keeps its bytes, its reason and its source.

Agents hand every per-message failure here instead of raising: an agent that raises stops
consuming while the worker stays up (a known Faust trap), so nothing may escape.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING

from flowmail.avro import ContractError
from flowmail.vocab import RejectReason
from processors.errors import RejectedInput
from streams import metrics

if TYPE_CHECKING:
    import faust
    from faust.types import Message

log = logging.getLogger(__name__)

HEADER_PREFIX = "flowmail."


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
    def __init__(self, topic: faust.TopicT) -> None:
        self.topic = topic

    async def reject(self, message: Message, error: BaseException, stage: str) -> None:
        """Publish the original key and value with reason headers; log without personal data."""
        reason, detail = reason_of(error)
        if reason == RejectReason.INTERNAL.value:
            log.error("internal error at %s on %s[%s]@%s:\n%s", stage, message.topic,
                      message.partition, message.offset, "".join(
                          traceback.format_exception_only(type(error), error)).strip())
        else:
            log.warning("dead-lettered %s[%s]@%s at %s: %s", message.topic, message.partition,
                        message.offset, stage, reason)
        metrics.DEAD_LETTERS.labels(stage=stage, reason=reason).inc()
        await self.topic.send(key=message.key, value=message.value or b"",
                              headers=dlq_headers(message, reason, detail, error, stage))
