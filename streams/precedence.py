"""Critical mail first on a shared event loop.

The senders of one process share its event loop and core. While a critical batch is being
handled, the other senders start no new email (they finish the step they are in), so a
password reset waits for at most one render and one SMTP exchange, never for a campaign's
batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager


class Precedence:
    def __init__(self) -> None:
        self._urgent = 0
        self._clear = asyncio.Event()
        self._clear.set()

    @contextmanager
    def urgent(self) -> Iterator[None]:
        self._urgent += 1
        self._clear.clear()
        try:
            yield
        finally:
            self._urgent -= 1
            if not self._urgent:
                self._clear.set()

    async def wait_turn(self) -> None:
        if not self._clear.is_set():
            await self._clear.wait()
