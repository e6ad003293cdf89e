"""Where the benchmark's email lands, and what it can tell afterwards: which idempotency key
arrived when. Postfix's ``smtp-sink`` dumps each message to a file (its mtime is the moment
the sink answered the final '.'); the fake provider APIs stamp every accepted recipient."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import requests

from core.catalogue import CATALOGUE, Category
from processors.message import IDEMPOTENCY_HEADER

KEY_HEADER = re.compile(IDEMPOTENCY_HEADER.encode() + rb":\s*([0-9a-f]{40})")
TYPE_HEADER = re.compile(rb"X-Flowmail-Email-Type:\s*([a-z_]+)")
# flowmail's mail to its own operators (a daily report when the day turns, an alert) may
# arrive during a run: it is not the workload's, and neither lost nor foreign
OPERATOR_MAIL = {e.email_type.value.encode() for e in CATALOGUE
                 if e.category is Category.OPERATIONS and e.email_type is not None}
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"


class BenchError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on port {port} within {timeout_s:.0f}s")


class Sink(Protocol):
    name: str
    pid: int | None

    def worker_env(self) -> dict[str, str]: ...
    def receipts(self) -> list[tuple[str, float]]: ...
    def keys(self) -> list[str]: ...
    def fresh_keys(self) -> list[str]: ...
    def reset(self) -> None: ...
    def stop(self) -> None: ...


@dataclass
class SmtpSink:
    """postfix's smtp-sink on a free port, or any SMTP server the user names (then receipts
    come from nowhere and only the delivery events can count)."""

    dump_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    external: bool = False
    name: str = "smtp"
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _seen: dict[str, str | None] = field(default_factory=dict)
    _reported: set[str] = field(default_factory=set)  # dump paths fresh_keys handed out

    @classmethod
    def start(cls, dump_dir: Path, host: str | None = None, port: int | None = None) -> SmtpSink:
        if host and port:
            return cls(dump_dir, host, port, external=True)
        if not Path(SMTP_SINK).exists():
            raise BenchError(f"{SMTP_SINK} is missing: install Debian's postfix package "
                             "(apt-get install postfix), or pass --smtp-host/--smtp-port")
        sink = cls(dump_dir)
        sink.reset()
        sink.port = free_port()
        argv = [SMTP_SINK, "-d", f"{dump_dir}/%H%M%S.", "-m", "512"]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # smtp-sink refuses to run as root without a user
        sink._proc = subprocess.Popen([*argv, f"127.0.0.1:{sink.port}", "1024"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        sink.pid = sink._proc.pid
        wait_port(sink.port, "smtp-sink")
        return sink

    def worker_env(self) -> dict[str, str]:
        return {"FLOWMAIL_SMTP_HOST": self.host, "FLOWMAIL_SMTP_PORT": str(self.port),
                "FLOWMAIL_SMTP_TLS": "none"}

    def message_bytes(self) -> int:
        """Mean size of the messages dumped so far (the raw limit is measured at this size)."""
        sizes = [os.stat(path).st_size for path, _ in self._scan()]
        return round(sum(sizes) / len(sizes)) if sizes else 0

    def receipts(self) -> list[tuple[str, float]]:
        """(idempotency key, accepted at) per dumped message. smtp-sink writes a dump while
        the message arrives: a key is cached once seen, the mtime is read on every call (it
        is final once the sink has answered the last '.')."""
        return [(key, os.stat(path).st_mtime) for path, key in self._scan()]

    def keys(self) -> list[str]:
        """The keys of the messages dumped so far, one per message, without a stat of each
        (a poll of 20,000 stats every quarter second took a tenth of a core from the run)."""
        return [key for _, key in self._scan()]

    def fresh_keys(self) -> list[str]:
        """The keys of the messages dumped since the last call (the first: all of them): a
        poller keeps a set of what is missing instead of building one of all that arrived."""
        fresh = [(path, key) for path, key in self._scan() if path not in self._reported]
        self._reported.update(path for path, _ in fresh)
        return [key for _, key in fresh]

    def _scan(self) -> list[tuple[str, str]]:
        if self.external:
            return []
        found = []
        with os.scandir(self.dump_dir) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False):
                    continue
                key = self._seen.get(entry.name)
                if key is None:
                    key = self._key(entry.path)
                    if key is None:  # its headers are not all there yet
                        continue
                    self._seen[entry.name] = key
                if key:  # "": operator mail
                    found.append((entry.path, key))
        return found

    @staticmethod
    def _key(path: str) -> str | None:
        """The message's idempotency key; "" for operator mail; None while incomplete."""
        with open(path, "rb") as handle:
            head = handle.read(16384)
        match = KEY_HEADER.search(head)
        if match is None:
            return None
        kind = TYPE_HEADER.search(head)
        return "" if kind and kind.group(1) in OPERATOR_MAIL else match.group(1).decode()

    def reset(self) -> None:
        """Empty the dump directory (kept: it may be a private one made by ``dump_root``)."""
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        with os.scandir(self.dump_dir) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
        self._seen.clear()
        self._reported.clear()

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        shutil.rmtree(self.dump_dir, ignore_errors=True)


@dataclass
class FakeApiSink:
    """The SendGrid or Mailgun stand-in (``python -m flowmail.fakes``) on a free port."""

    name: str
    port: int
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _resets: int = -1     # the fake's reset count when the receipts below were read
    _read: int = 0        # receipts read so far, operator mail included
    _kept: list[tuple[str, float]] = field(default_factory=list)
    _fresh_at: int = 0    # receipts in _kept that fresh_keys has handed out

    API_KEY = "bench-key"
    DOMAIN = "mg.bench.example"

    @classmethod
    def start(cls, name: str) -> FakeApiSink:
        port = free_port()
        argv = [sys.executable, "-m", "flowmail.fakes", name, "--port", str(port),
                "--api-key", cls.API_KEY]
        if name == "mailgun":
            argv += ["--domain", cls.DOMAIN]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_port(port, f"fake {name}")
        return cls(name, port, proc.pid, proc)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def worker_env(self) -> dict[str, str]:
        if self.name == "sendgrid":
            return {"FLOWMAIL_SENDGRID_HOST": self.url, "FLOWMAIL_SENDGRID_API_KEY": self.API_KEY}
        return {"FLOWMAIL_MAILGUN_BASE_URL": self.url, "FLOWMAIL_MAILGUN_API_KEY": self.API_KEY,
                "FLOWMAIL_MAILGUN_DOMAIN": self.DOMAIN}

    def receipts(self) -> list[tuple[str, float]]:
        """Every receipt so far; only those after the ones read before are fetched."""
        self._fetch()
        return list(self._kept)

    def keys(self) -> list[str]:
        return [key for key, _ in self.receipts()]

    def fresh_keys(self) -> list[str]:
        """The keys received since the last call (the first: all of them)."""
        self._fetch()
        fresh, self._fresh_at = self._kept[self._fresh_at:], len(self._kept)
        return [key for key, _ in fresh]

    def _fetch(self) -> None:
        answer = requests.get(f"{self.url}/_fake/receipts",
                              params={"since": self._read}, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        if body["resets"] != self._resets or body["total"] < self._read:  # emptied since
            self._forget(body["resets"])
            self._fetch()
            return
        self._read += len(body["receipts"])
        self._kept += [(key, at) for key, at, kind in body["receipts"]
                       if (kind or "").encode() not in OPERATOR_MAIL]

    def _forget(self, resets: int) -> None:
        self._resets, self._read, self._kept, self._fresh_at = resets, 0, [], 0

    def reset(self) -> None:
        requests.post(f"{self.url}/_fake/reset", timeout=10).raise_for_status()
        self._forget(-1)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


def dump_root(fallback: Path, expected_bytes: int) -> Path:
    """Where smtp-sink dumps: in memory (/dev/shm) when the run's messages fit there with
    room to spare, else ``fallback``. The peer's sink only counts (``-c``); this one has to
    dump to tell which email arrived when, and a file per message on a busy disk took
    6-12 CPU-s and the disk's whole attention from a 20,000-email run on a slow machine
    (docs/performance.md, "The benchmark's sink")."""
    shm = "/dev/shm"  # noqa: S108 - a private directory is made in it (mkdtemp)
    try:
        if shutil.disk_usage(shm).free < 4 * expected_bytes:
            return fallback
        return Path(tempfile.mkdtemp(prefix=f"flowmail-{fallback.name}-", dir=shm))
    except OSError:
        return fallback


def start_sink(provider: str, dump_dir: Path, smtp_host: str | None,
               smtp_port: int | None) -> Sink:
    if provider == "smtp":
        return SmtpSink.start(dump_dir, smtp_host, smtp_port)
    if provider in {"sendgrid", "mailgun"}:
        return FakeApiSink.start(provider)
    raise BenchError(f"--provider {provider!r}: choose smtp, sendgrid or mailgun")
