"""email.suppressions: unreadable changes become dead letters.

The change records themselves are merged by every sender process's SuppressionView
(streams/changelog_store.py), straight from this topic (kept forever, small). This agent only
holds the dead-letter promise for what no view can read (one consumer group: once each).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from core.settings import Settings
from processors.suppression import merge, parse_change
from streams.dlq import DeadLetters
from streams.topics import SUPPRESSIONS, faust_topic, spec_by_name

if TYPE_CHECKING:
    import faust


def parse(value: bytes | None) -> dict[str, Any] | None:
    """A change record; None (tombstone) lifts every scope."""
    if not value:
        return None
    return parse_change(json.loads(value))


def merge_of(settings: Settings) -> Callable[[Any, Any], Any]:
    """Every process merges changes with the same soft-bounce rule (settings)."""
    return partial(merge, soft_limit=settings.soft_bounce_limit,
                   soft_window_ms=int(settings.soft_bounce_window_s * 1000))


def register(app: faust.App, settings: Settings, dead: DeadLetters) -> None:
    source = faust_topic(app, spec_by_name(settings)[SUPPRESSIONS])

    @app.agent(source, name="suppressions")
    async def suppressions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await dead.attempt(event.message, "suppressions",
                               lambda e=event: parse(e.message.value))
