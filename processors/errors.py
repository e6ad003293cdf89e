"""The one error processors raise for input they reject; the DLQ policy reads ``reason``."""

from __future__ import annotations

from flowmail.vocab import RejectReason


class RejectedInput(ValueError):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail
