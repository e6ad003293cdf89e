"""Critical mail first: on a shared event loop, and across the processes of one worker.

The senders of one process share its event loop and core. While a critical batch is being
handled, the other senders start no new email (they finish the step they are in), so a
password reset waits for at most one render and one SMTP exchange, never for a campaign's
batch.

Across processes (the critical lane beside the worker processes, flowmail/supervisor.py),
the same holds through a lease in a small shared file: while the lane handles a batch it
keeps "urgent until <time>" there, and the other processes' senders wait for it to pass
before starting an email. Measured in the backlog scenario: with the lane alone the campaign's
sends kept both cores and the SMTP server busy, and a password reset's send waited 90 ms
(p50) for the server. The lease expires by itself (``LEASE_S``), so a lane that dies in the
middle of a batch holds nobody up for longer than that.
"""

from __future__ import annotations

import asyncio
import mmap
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LEASE_S = 2.0  # the longest a critical batch holds the others back
POLL_S = 0.002  # how often a waiting sender looks at the lease again
_STAMP = struct.Struct("d")  # urgent until this wall-clock time; 0: not urgent


class SharedUrgency:
    """The lease file of one worker (``<home>/run/<app id>.urgent``), mapped in memory: a
    reader's look is a memory read, not a system call."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+b") as handle:
            if handle.seek(0, 2) < _STAMP.size:
                handle.write(b"\0" * _STAMP.size)
                handle.flush()
            self._map = mmap.mmap(handle.fileno(), _STAMP.size)

    def hold(self) -> None:
        _STAMP.pack_into(self._map, 0, time.time() + LEASE_S)

    def release(self) -> None:
        _STAMP.pack_into(self._map, 0, 0.0)

    def urgent(self) -> bool:
        return _STAMP.unpack_from(self._map, 0)[0] > time.time()

    def close(self) -> None:
        self._map.close()


def urgency_file(home: Path, app_id: str) -> Path:
    return home / "run" / f"{app_id}.urgent"


class Precedence:
    def __init__(self, shared: SharedUrgency | None = None) -> None:
        self._urgent = 0
        self._clear = asyncio.Event()
        self._clear.set()
        self._shared = shared
        self._lease_over = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    @contextmanager
    def urgent(self) -> Iterator[None]:
        self._urgent += 1
        self._clear.clear()
        if self._shared is not None:
            self._shared.hold()
        try:
            yield
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._clear.set()
                if self._shared is not None:
                    self._shared.release()

    async def wait_turn(self) -> None:
        if not self._clear.is_set():
            await self._clear.wait()
        if self._shared is not None and self._shared.urgent():
            # one task of the process looks at the lease; every waiting sender awaits it
            if self._watcher is None or self._watcher.done():
                self._lease_over.clear()
                self._watcher = asyncio.create_task(self._watch_lease())
            await self._lease_over.wait()

    async def _watch_lease(self) -> None:
        assert self._shared is not None
        try:
            while self._shared.urgent():
                await asyncio.sleep(POLL_S)
        finally:
            self._lease_over.set()
