"""email.suppressions (changes, keyed by recipient key) -> the suppressions table (merged).

Each record is one change (a scope added or lifted; see processors/suppression.py); the
agent merges it into the recipient's entry, whose compacted changelog restores the table.
An empty value (tombstone) lifts every scope. The table is co-partitioned with the command
topics (same key, same partition count, murmur2 placement by every producer), so each sender
sees its recipients' entries.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flowmail.settings import Settings
from processors.errors import RejectedInput
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
            except (ValueError, UnicodeDecodeError, RejectedInput) as err:
                await dead.reject(event.message, err, stage="suppressions")
                continue
            merged = merge(table.get(key), entry)
            if merged is None:
                table.pop(key, None)
            else:
                table[key] = merged

    return table
