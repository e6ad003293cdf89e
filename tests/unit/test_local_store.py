"""The disk-backed maps under the changelog stores (streams/local_store.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from streams import local_store
from streams.local_store import DiskMaps


def test_partitions_are_separate_maps(tmp_path):
    maps = DiskMaps(tmp_path, "ledger")
    maps.put(0, "k", "a")
    maps.put(1, "k", "b")
    assert (maps.get(0, "k"), maps.get(1, "k"), maps.get(2, "k")) == ("a", "b", None)
    maps.put(0, "k", "c")
    maps.delete(1, "k")
    assert (maps.get(0, "k"), maps.get(1, "k")) == ("c", None)
    maps.clear(0)
    assert maps.get(0, "k") is None
    maps.close()


def test_apply_puts_and_deletes_in_order(tmp_path):
    maps = DiskMaps(tmp_path, "profiles")
    maps.apply([(3, "a", "1"), (3, "b", "2"), (3, "a", None), (3, "b", "3")])
    assert (maps.get(3, "a"), maps.get(3, "b"), maps.count([3, 4])) == (None, "3", 1)
    maps.close()


def test_values_pages_through_a_partition_and_survives_writes_between_pages(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(local_store, "SCAN_PAGE", 7)
    maps = DiskMaps(tmp_path, "profiles")
    maps.apply([(1, f"k{i:03d}", str(i)) for i in range(50)])
    maps.put(2, "other", "x")
    seen = []
    for value in maps.values(1):
        seen.append(value)
        maps.put(1, f"k{int(value):03d}", value)  # rewriting a row read does not repeat it
    assert sorted(seen, key=int) == [str(i) for i in range(50)]
    assert list(maps.values(9)) == []
    maps.close()


def test_a_new_store_starts_empty_and_close_removes_its_file(tmp_path):
    maps = DiskMaps(tmp_path, "ledger")
    maps.put(0, "k", "v")
    path = maps.path
    maps.close()
    again = DiskMaps(tmp_path, "ledger")  # same process: the file is new
    assert again.get(0, "k") is None
    again.close()
    assert not path.exists()


def test_files_of_dead_processes_are_removed_not_those_of_live_ones(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    orphan = tmp_path / f"ledger.{int(dead.stdout)}.sqlite"
    orphan.write_bytes(b"")
    alive = tmp_path / f"ledger.{os.getppid()}.sqlite"
    alive.write_bytes(b"")
    other_store = tmp_path / f"profiles.{int(dead.stdout)}.sqlite"
    other_store.write_bytes(b"")
    maps = DiskMaps(tmp_path, "ledger")
    assert not orphan.exists()
    assert alive.exists() and other_store.exists()
    maps.close()


def test_store_names_become_safe_file_names(tmp_path):
    maps = DiskMaps(tmp_path, "app/ledger critical")
    assert maps.path.parent == tmp_path and "/" not in maps.path.name[:-7]
    maps.close()
