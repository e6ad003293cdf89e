"""Which asyncio event loop the worker processes run: uvloop (libuv) unless told otherwise.

Every email crosses the event loop many times (a batch's futures, SMTP writes and replies,
the executor hand-offs of the Kafka threads); uvloop runs those callbacks and socket writes
in C. Measured in docs/performance.md; ``FLOWMAIL_EVENT_LOOP=asyncio`` gives the standard
library's loop (for a platform uvloop does not build on)."""

from __future__ import annotations

import asyncio

CHOICES = ("uvloop", "asyncio")


def install(name: str) -> None:
    """Set the policy before the process creates its loop (Faust's worker, asyncio.run)."""
    if name not in CHOICES:
        raise ValueError(f"event loop {name!r}: choose from {', '.join(CHOICES)}")
    if name == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
