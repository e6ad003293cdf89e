"""Process bookkeeping for the local stack: pid files, ports, logs, clear failures."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Children started by this process: their exit status is known exactly, even in the moment
# between fork and exec when /proc still shows the parent's command line.
_children: dict[int, subprocess.Popen[bytes]] = {}


class StackError(RuntimeError):
    """A local-stack service cannot be fetched, started or reached; the message says why."""


@dataclass(frozen=True)
class Managed:
    """A process flowmail starts: its pid file, a marker in its command line, its log."""

    name: str
    pidfile: Path
    marker: str
    log: Path

    def pid(self) -> int | None:
        """The pid if the recorded process is alive and is really ours (marker in cmdline)."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except (OSError, ValueError):
            return None
        return pid if self.marker.encode() in cmdline else None

    def running(self) -> bool:
        return self.pid() is not None


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def require_free_ports(service: str, ports: Sequence[int]) -> None:
    taken = [p for p in ports if port_in_use(p)]
    if taken:
        raise StackError(
            f"{service}: port(s) {', '.join(map(str, taken))} on 127.0.0.1 are already in use by "
            "a process flowmail did not start; stop it (see `ss -ltnp`) and run again")


def spawn(proc: Managed, argv: Sequence[str], env: dict[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start ``argv`` detached (own session), output to the log, pid to the pid file."""
    proc.log.parent.mkdir(parents=True, exist_ok=True)
    with open(proc.log, "ab") as log:
        child = subprocess.Popen(  # noqa: S603 - argv is built by flowmail, not from input
            list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=cwd)
    proc.pidfile.write_text(str(child.pid))
    _children[child.pid] = child
    return child.pid


def _alive(proc: Managed) -> bool:
    try:
        child = _children[int(proc.pidfile.read_text().strip())]
    except (OSError, ValueError, KeyError):
        return proc.running()
    return child.poll() is None


def wait_until(proc: Managed, healthy: Callable[[], bool], timeout_s: float) -> None:
    """Poll ``healthy`` until it holds; fail fast with the log's tail if the process dies."""
    deadline = time.monotonic() + timeout_s
    while True:
        if not _alive(proc):
            raise StackError(f"{proc.name} exited during start-up; last lines of {proc.log}:\n"
                             f"{tail(proc.log)}")
        if healthy():
            return
        if time.monotonic() > deadline:
            raise StackError(f"{proc.name} not healthy after {timeout_s:.0f}s; last lines of "
                             f"{proc.log}:\n{tail(proc.log)}")
        time.sleep(0.5)


def stop(proc: Managed, grace_s: float = 60.0) -> bool:
    """SIGTERM our process (never a stranger's), SIGKILL after ``grace_s``. True if it ran."""
    pid = proc.pid()
    if pid is None:
        proc.pidfile.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and proc.running():
        time.sleep(0.2)
    if proc.running():
        os.kill(pid, signal.SIGKILL)
    proc.pidfile.unlink(missing_ok=True)
    return True


def run_checked(argv: Sequence[str], what: str, log: Path, env: dict[str, str] | None = None
                ) -> None:
    """Run a set-up step to completion; on failure raise with the step's output tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        code = subprocess.call(list(argv), stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
    if code != 0:
        raise StackError(f"{what} failed (exit {code}); last lines of {log}:\n{tail(log)}")
