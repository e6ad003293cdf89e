"""The benchmark's worker processes: what ``flowmail worker`` starts (K worker processes and the
critical lane, flowmail/supervisor.layout), but each started here so each is measured: their
start, readiness and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import requests

from bench.sinks import BenchError, free_port
from core.settings import Settings
from flowmail.supervisor import child_argv, child_setup, layout


def deadline_poll(check: Any, timeout_s: float, what: str, every_s: float = 0.2,
                   alive: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise BenchError(f"{what} not reached within {timeout_s:.0f}s")
        time.sleep(every_s)


class Workers:
    """The layout's processes, started one by one (the first of a new group places it at the
    end of its topics), logs under the report dir."""

    def __init__(self, settings: Settings, count: int, provider: str, env: dict[str, str],
                 log_dir: Path) -> None:
        self.settings, self.count, self.provider = settings, count, provider
        self.env, self.log_dir = env, log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.names: list[str] = []

    def start(self, timeout_s: float = 180.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        args = ["--provider", self.provider, "--new-group-starts-at", "latest",
                "--loglevel", "warning"]
        for index, child in enumerate(layout(self.settings, self.count)):
            name = "critical" if child.lane == "critical" else f"worker-{index}"
            port = free_port()
            env = {**os.environ, **self.env, "FLOWMAIL_WEB_PORT": str(port),
                   "FLOWMAIL_APP_ID": self.settings.app_id}
            log = open(self.log_dir / f"{name}.log", "wb")
            self.procs.append(subprocess.Popen(
                child_argv(child, args), stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True, preexec_fn=lambda nice=child.nice: child_setup(nice)))
            self.ports.append(port)
            self.names.append(name)
            deadline_poll(lambda last=index: self._ready(last), timeout_s, f"{name} ready",
                          alive=self.check_alive)
        deadline_poll(lambda: all(self._ready(i) for i in range(len(self.procs))), timeout_s,
                       "all workers ready", alive=self.check_alive)

    def _ready(self, index: int) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.ports[index]}/ready", timeout=2).ok
        except requests.RequestException:
            return False

    def check_alive(self) -> None:
        for index, proc in enumerate(self.procs):
            if proc.poll() is not None:
                name = self.names[index]
                raise BenchError(f"{name} exited ({proc.returncode}); see "
                                 f"{self.log_dir / f'{name}.log'}")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
