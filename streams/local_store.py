"""The local copy of a changelog's partitions, on disk: what bounds a worker's memory.

A million-recipient campaign put a million profiles and a million ledger entries in Python
dicts (about 150-300 bytes each); here they are rows of a SQLite file per store and process
(standard library, no server), and memory is SQLite's page cache. The truth is the Kafka
changelog, so nothing here needs to survive: no journal, no fsync, the file is new at each
start, and files of processes that are gone are removed. Measured on this machine: a get
~6 us, a put ~5 us, a restore ~4 us per entry, a scan ~0.5 us per entry.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

CACHE_KIB = 4 * 1024    # SQLite's page cache per store: the memory a store may take
SCAN_PAGE = 512         # rows read per query of a scan


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(directory: Path, stem: str) -> None:
    """Files of this store left by processes that died (kill -9 leaves them)."""
    pattern = re.compile(re.escape(stem) + r"\.(\d+)\.sqlite$")
    for path in directory.glob(f"{stem}.*.sqlite"):
        match = pattern.match(path.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)


class DiskMaps:
    """One string -> string map per partition, in ``<directory>/<name>.<pid>.sqlite``."""

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        _remove_orphans(directory, stem)
        self.path = directory / f"{stem}.{os.getpid()}.sqlite"
        self.path.unlink(missing_ok=True)
        # one connection, used by the event loop and by the consumer thread's rebalance
        # callbacks, never at the same time (a batch is handled between two consume calls)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # secure_delete: a deleted or replaced value is overwritten in the file, so an erased
        # person's profile cannot be read back from free pages
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE",
                       "temp_store=FILE", "secure_delete=ON", f"cache_size=-{CACHE_KIB}"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute("CREATE TABLE entries (partition INTEGER, key TEXT, value TEXT, "
                         "PRIMARY KEY (partition, key)) WITHOUT ROWID")

    def get(self, partition: int, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM entries WHERE partition = ? AND key = ?",
                               (partition, key)).fetchone()
        return row[0] if row else None

    def put(self, partition: int, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?)",
                         (partition, key, value))

    def delete(self, partition: int, key: str) -> None:
        self._db.execute("DELETE FROM entries WHERE partition = ? AND key = ?",
                         (partition, key))

    def apply(self, changes: Iterable[tuple[int, str, str | None]]) -> None:
        """Puts and (value None) deletes, in one transaction, in order."""
        self._db.execute("BEGIN")
        try:
            for partition, key, value in changes:
                if value is None:
                    self.delete(partition, key)
                else:
                    self.put(partition, key, value)
        finally:
            self._db.execute("COMMIT")

    def clear(self, partition: int) -> None:
        self._db.execute("DELETE FROM entries WHERE partition = ?", (partition,))

    def count(self, partitions: Iterable[int]) -> int:
        return sum(int(self._db.execute("SELECT COUNT(*) FROM entries WHERE partition = ?",
                                        (partition,)).fetchone()[0])
                   for partition in partitions)

    def values(self, partition: int) -> Iterator[str]:
        for _key, value in self.items(partition):
            yield value

    def items(self, partition: int, after: str | None = None) -> Iterator[tuple[str, str]]:
        """Every (key, value) of ``partition`` after the key ``after``, a page at a time by
        key (writes between two pages neither break nor repeat the scan)."""
        if after is None:
            rows = self._db.execute("SELECT key, value FROM entries WHERE partition = ? "
                                    "ORDER BY key LIMIT ?", (partition, SCAN_PAGE)).fetchall()
        else:
            rows = self._page(partition, after)
        while True:
            yield from rows
            if len(rows) < SCAN_PAGE:
                return
            rows = self._page(partition, rows[-1][0])

    def _page(self, partition: int, after: str) -> list[tuple[str, str]]:
        return self._db.execute(
            "SELECT key, value FROM entries WHERE partition = ? AND key > ? ORDER BY key "
            "LIMIT ?", (partition, after, SCAN_PAGE)).fetchall()

    def close(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)
