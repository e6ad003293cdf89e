"""The worker's lanes: which agents and priorities run in which process by default.

Measured (docs/performance.md, backlog of 20,000 marketing then 200 password resets): with
every agent in one process the resets waited behind the marketing sends on one event loop
and one core (critical p99 13.9 s); with the marketing sender and the OpenSearch sink in a
second process and consumer group, at a lower CPU priority, 1.8 s, and both cores work.

Each lane is its own consumer group (``<app id><suffix>``, with its own ledger changelogs) so
the two processes never share partitions of different agents. A lane group that is new
starts at the offsets the worker's own group committed (FLOWMAIL_BASE_APP_ID), so moving from
one process to lanes neither skips nor re-sends what is still retained.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowmail.vocab import Priority


@dataclass(frozen=True)
class Lane:
    name: str
    agents: tuple[str, ...]
    priorities: tuple[Priority, ...]
    app_suffix: str = ""
    web_port_offset: int = 0  # the main lane serves /ready, /preview, /unsubscribe
    nice: int = 0             # batch work yields the CPU to the interactive lane


LANES = (
    Lane("main", ("router", "sender"), (Priority.CRITICAL, Priority.TRANSACTIONAL)),
    Lane("bulk", ("sender", "sink"), (Priority.MARKETING,), app_suffix="-bulk",
         web_port_offset=1, nice=10),
)
