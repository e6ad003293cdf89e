"""``flowmail worker`` by default: one worker process per CPU core, plus the critical lane,
supervised.

Every worker process is a member of every consumer group but security mail's (router, the
transactional and marketing senders, the sink), so partitions spread over the processes and
both cores work; the critical lane (streams/critical_lane.py) alone routes and sends security
mail, on an event loop of its own, and the others run at ``FLOWMAIL_BULK_NICE`` so the kernel
runs a password reset first. Measured in docs/performance.md ("Layout"). With
``FLOWMAIL_CRITICAL_LANE=false`` every process is a full worker (critical mail still goes first
inside each, streams/precedence.py). The children die with the supervisor (PR_SET_PDEATHSIG), so
a kill -9 of the worker is a crash of every process, as a container runtime would see it;
SIGTERM and SIGINT are passed on; when one process exits the others are stopped and the
worker exits with the first failure (the orchestrator restarts it).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from core.settings import Settings

PR_SET_PDEATHSIG = 1
AUTOGROUP = "/proc/self/autogroup"


def process_count(settings: Settings) -> int:
    return settings.worker_processes or os.cpu_count() or 1


@dataclass(frozen=True)
class Child:
    """One process of the worker: its lane (``flowmail worker --lane``), niceness, web port."""

    lane: str  # "all", "bulk" or "critical"
    nice: int
    web_port: int


def layout(settings: Settings, count: int) -> list[Child]:
    """``count`` worker processes, then the critical lane if it runs apart; each process
    serves /ready, /metrics (and the full ones /preview, /unsubscribe) on its own port."""
    if not settings.critical_lane:
        return [Child("all", 0, settings.web_port + i) for i in range(count)]
    return [*(Child("bulk", settings.bulk_nice, settings.web_port + i) for i in range(count)),
            Child("critical", 0, settings.web_port + count)]


def child_argv(child: Child, common_args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "flowmail", "worker", "--processes", "1",
            f"--lane={child.lane}", *common_args]


def child_setup(nice: int) -> None:
    """In the child before exec: die with the parent, take the lane's niceness.

    Started in a session of its own (``start_new_session``), the child also gives that
    session's autogroup its niceness: with the kernel's autogroups (on by default in many
    kernels), CPU time is shared between sessions first, and a process's own nice value only
    counts against processes of its session. Measured in the backlog scenario (one run
    each): critical p99 593 ms with nice alone, 315 ms with the autogroup's."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if nice:
        os.nice(nice)
        if os.getsid(0) == os.getpid():  # never renice the session that started us
            set_autogroup_nice(nice)


def set_autogroup_nice(nice: int, path: str = AUTOGROUP) -> bool:
    """Best effort: False where the kernel has no autogroups or refuses."""
    try:
        with open(path, "w") as handle:
            handle.write(str(nice))
        return True
    except OSError:
        return False


def run_processes(settings: Settings, count: int, common_args: Sequence[str]) -> int:
    """Start the layout's processes (``flowmail worker --processes 1 --lane ...``); the first
    failing code."""
    children = []
    for child in layout(settings, count):
        children.append(subprocess.Popen(  # noqa: S603 - argv built here, not from input
            child_argv(child, common_args),
            env={**os.environ, "FLOWMAIL_WEB_PORT": str(child.web_port)},
            start_new_session=True,  # its own autogroup (child_setup); signals come from here
            preexec_fn=lambda nice=child.nice: child_setup(nice)))

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    first: int | None = None
    while any(child.poll() is None for child in children):
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        code = os.waitstatus_to_exitcode(status)
        for child in children:
            if child.pid == pid:
                child.returncode = code
        if first is None:
            first = code
            forward(signal.SIGTERM, None)  # one down: stop the others, let k8s restart
    codes = [child.returncode for child in children]
    return first if first else next((c for c in codes if c), 0)
