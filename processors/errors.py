"""The one error processors raise for input they reject; the DLQ policy reads ``reason``."""

from __future__ import annotations

from core.vocab import RejectReason


class RejectedInput(ValueError):
    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


class AttachmentFailed(RuntimeError):
    """A document that *is* the email (an invoice's PDF) could not be made. Transient by
    policy: the sender retries it through the retry topic, then fails it with an alert."""
