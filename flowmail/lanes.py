"""``flowmail worker`` by default: one process per lane (streams/lanes.py), supervised.

The children die with the supervisor (PR_SET_PDEATHSIG), so a kill -9 of the worker is a
crash of every lane, as a container runtime would see it; SIGTERM and SIGINT are passed on;
when one lane exits the other is stopped and the worker exits with the first failure.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from flowmail.settings import Settings
from streams.lanes import LANES, Lane

PR_SET_PDEATHSIG = 1


def lane_env(settings: Settings, lane: Lane) -> dict[str, str]:
    env = {"FLOWMAIL_APP_ID": settings.app_id + lane.app_suffix,
           "FLOWMAIL_WEB_PORT": str(settings.web_port + lane.web_port_offset)}
    if lane.app_suffix:  # a group of its own: it starts where the worker's group stopped
        env["FLOWMAIL_BASE_APP_ID"] = settings.app_id
    return env


def lane_args(lane: Lane) -> list[str]:
    return ["--lanes", "one", "--agents", ",".join(lane.agents),
            "--priorities", ",".join(p.value for p in lane.priorities)]


def _child_setup(nice: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if nice:
        os.nice(nice)


def run_lanes(settings: Settings, common_args: Sequence[str]) -> int:
    """Start every lane as ``flowmail worker``; return the first failing exit code."""
    children = []
    for lane in LANES:
        argv = [sys.executable, "-m", "flowmail", "worker", *lane_args(lane), *common_args]
        children.append(subprocess.Popen(  # noqa: S603 - argv built here, not from input
            argv, env={**os.environ, **lane_env(settings, lane)},
            preexec_fn=lambda n=lane.nice: _child_setup(n)))

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
            forward(signal.SIGTERM, None)  # one lane down: stop the other, let k8s restart
    codes = [child.returncode for child in children]
    return first if first else next((c for c in codes if c), 0)
