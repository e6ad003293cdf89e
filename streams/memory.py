"""Give freed heap back to the system.

A restore reads a changelog's whole history (every profile ever written, tombstones
included) and frees it as it goes, and a batch allocates and frees thousands of records; glibc
keeps what was freed in the process (measured: 111 MB of RSS after restoring a changelog
whose live entries fit in 1 MB, 45 MB after ``malloc_trim``). Trimming after each restore and
every ``TRIM_EVERY_S`` keeps a worker's RSS at what it holds (docs/performance.md, "Memory").
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from typing import Any

log = logging.getLogger(__name__)

TRIM_EVERY_S = 10.0


def _libc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_TRIM = _libc_trim()


def trim() -> None:
    if _TRIM is not None:
        _TRIM(0)


async def trim_forever() -> None:
    while True:
        await asyncio.sleep(TRIM_EVERY_S)
        trim()
