"""CPU seconds and peak RSS of named processes over a window, sampled from a thread."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil


@dataclass
class _Watched:
    process: psutil.Process
    cpu_start: float
    cpu_end: float = 0.0
    peak_rss: int = 0
    start_rss: int = 0
    rss_by_second: list[float] = field(default_factory=list)  # MiB, one a second


@dataclass
class ProcessStats:
    """``start`` reads each process's CPU time; ``stop`` reads it again. RSS is polled every
    ``interval_s`` in between (the kernel's VmHWM would include the JVMs' warm-up)."""

    pids: dict[str, int]
    interval_s: float = 0.1
    _watched: dict[str, _Watched] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ProcessStats:
        for name, pid in self.pids.items():
            process = psutil.Process(pid)
            times = process.cpu_times()
            self._watched[name] = _Watched(process, times.user + times.system,
                                           start_rss=process.memory_info().rss)
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
        return report
