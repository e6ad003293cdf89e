"""CPU seconds and peak RSS of named processes over a window, sampled from a thread; for a
JVM, also the part its JIT compiler threads spent (compiling, not serving)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# HotSpot names its compiler threads "C1 CompilerThreadN" / "C2 CompilerThreadN"; the kernel
# keeps the first 15 bytes
JIT_THREAD_PREFIXES = ("C1 CompilerThre", "C2 CompilerThre")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class JitThreads:
    """CPU seconds of one process's JIT compiler threads since ``start``. HotSpot starts and
    ends compiler threads as the queue grows and empties, so they are read at every poll:
    a thread that ended keeps what it was last seen at."""

    def __init__(self, pid: int, proc: Path = Path("/proc")) -> None:
        self.tasks = proc / str(pid) / "task"
        self._names: dict[str, bool] = {}       # tid -> is a compiler thread
        self._first: dict[str, float] = {}      # tid -> CPU s when first seen
        self._last: dict[str, float] = {}       # tid -> CPU s when last seen
        self._started = False

    def sample(self) -> None:
        try:
            tids = os.listdir(self.tasks)
        except OSError:
            return
        for tid in tids:
            compiler = self._names.get(tid)
            if compiler is None:
                try:
                    name = (self.tasks / tid / "comm").read_text().rstrip("\n")
                except OSError:
                    continue
                compiler = self._names[tid] = name.startswith(JIT_THREAD_PREFIXES)
            if not compiler:
                continue
            try:
                fields = (self.tasks / tid / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
            # a thread born after start compiled all its CPU time inside the window
            self._first.setdefault(tid, seconds if not self._started else 0.0)
            self._last[tid] = seconds
        self._started = True

    def cpu_s(self) -> float:
        return sum(self._last[tid] - self._first[tid] for tid in self._last)


@dataclass
class _Watched:
    process: psutil.Process
    cpu_start: float
    cpu_end: float = 0.0
    peak_rss: int = 0
    start_rss: int = 0
    rss_by_second: list[float] = field(default_factory=list)  # MiB, one a second
    jit: JitThreads | None = None  # a JVM's compiler threads


@dataclass
class ProcessStats:
    """``start`` reads each process's CPU time; ``stop`` reads it again. RSS is polled every
    ``interval_s`` in between (the kernel's VmHWM would include the JVMs' warm-up).
    ``jvms``: names of the processes whose JIT compiler time is reported too."""

    pids: dict[str, int]
    jvms: frozenset[str] = frozenset()
    interval_s: float = 0.1
    _watched: dict[str, _Watched] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcessStats:
        for name, pid in self.pids.items():
            process = psutil.Process(pid)
            times = process.cpu_times()
            jit = JitThreads(pid) if name in self.jvms else None
            if jit is not None:
                jit.sample()
            self._watched[name] = _Watched(process, times.user + times.system,
                                           start_rss=process.memory_info().rss, jit=jit)
        self._thread = threading.Thread(target=self._poll, name="procstats", daemon=True)
        self._thread.start()
        return self

    def _sample(self, record: bool = False) -> None:
        for watched in self._watched.values():
            try:
                rss = watched.process.memory_info().rss
            except psutil.Error:
                continue  # exited: keep what was seen
            watched.peak_rss = max(watched.peak_rss, rss)
            if watched.jit is not None:
                watched.jit.sample()
            if record:
                watched.rss_by_second.append(round(rss / 2**20, 1))

    def _poll(self) -> None:
        per_second = max(1, round(1 / self.interval_s))
        ticks = 0
        while not self._stop.wait(self.interval_s):
            ticks += 1
            self._sample(record=ticks % per_second == 0)

    def stop(self) -> dict[str, dict[str, float]]:
        self._sample()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        report = {}
        for name, watched in self._watched.items():
            try:
                times = watched.process.cpu_times()
                watched.cpu_end = times.user + times.system
            except psutil.Error:
                watched.cpu_end = watched.cpu_start
            report[name] = {"cpu_s": round(watched.cpu_end - watched.cpu_start, 2),
                            "start_rss_mb": round(watched.start_rss / 2**20, 1),
                            "peak_rss_mb": round(watched.peak_rss / 2**20, 1),
                            "rss_mb_by_second": watched.rss_by_second}
            if watched.jit is not None:
                report[name]["jit_cpu_s"] = round(watched.jit.cpu_s(), 2)
        return report
