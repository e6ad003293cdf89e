"""email.suppressions (compacted, keyed by recipient key) -> the suppressions table.

Values are JSON ``{"reason": "hard_bounce|complaint|unsubscribe|manual", "at": ms}``; an
empty value (tombstone) lifts the suppression. The table is co-partitioned with the command
topics (same key, same partition count), so each sender sees its recipients' entries.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flowmail.settings import Settings
from streams.dlq import DeadLetters
from streams.topics import SUPPRESSIONS, faust_topic, spec_by_name

if TYPE_CHECKING:
    import faust

REASONS = {"hard_bounce", "complaint", "unsubscribe", "manual"}


def parse(value: bytes | None) -> dict[str, Any] | None:
    """None lifts the suppression; anything else must be a known reason."""
    if not value:
        return None
    entry = json.loads(value)
    if not isinstance(entry, dict) or entry.get("reason") not in REASONS:
        raise ValueError(f"suppression needs a reason in {sorted(REASONS)}")
    return entry


def register(app: faust.App, settings: Settings, dead: DeadLetters) -> Any:
    table = app.Table("suppressions", default=None, partitions=settings.partitions_email,
                      key_type=str)
    source = faust_topic(app, spec_by_name(settings)[SUPPRESSIONS])

    @app.agent(source, name="suppressions")
    async def suppressions(stream: faust.StreamT) -> None:
        async for event in stream.events():
            key = (event.message.key or b"").decode()
            try:
                entry = parse(event.message.value)
            except (ValueError, UnicodeDecodeError) as err:
                await dead.reject(event.message, err, stage="suppressions")
                continue
            if entry is None:
                table.pop(key, None)
            else:
                table[key] = entry

    return table
