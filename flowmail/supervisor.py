"""``flowmail worker`` by default: one worker process per CPU core, supervised.

Every process is a full worker and a member of every consumer group (router, each
priority's sender, the sink), so partitions spread over the processes and both cores work;
critical mail still goes first inside each process (streams/precedence.py). Measured in
docs/performance.md ("Layout"). The children die with the supervisor (PR_SET_PDEATHSIG), so
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

from flowmail.settings import Settings

PR_SET_PDEATHSIG = 1


def process_count(settings: Settings) -> int:
    return settings.worker_processes or os.cpu_count() or 1


def child_env(settings: Settings, index: int) -> dict[str, str]:
    """Process ``index`` serves /ready, /metrics, /preview and /unsubscribe on its own port."""
    return {"FLOWMAIL_WEB_PORT": str(settings.web_port + index)}


def _child_setup() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_processes(settings: Settings, count: int, common_args: Sequence[str]) -> int:
    """Start ``count`` copies of ``flowmail worker --processes 1``; the first failing code."""
    children = []
    for index in range(count):
        argv = [sys.executable, "-m", "flowmail", "worker", "--processes", "1", *common_args]
        children.append(subprocess.Popen(  # noqa: S603 - argv built here, not from input
            argv, env={**os.environ, **child_env(settings, index)}, preexec_fn=_child_setup))

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
