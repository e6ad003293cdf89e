"""The SMTP mail catcher as a managed local-stack process."""

from __future__ import annotations

import smtplib
import sys
from pathlib import Path

from flowmail.localstack.procs import Managed, require_free_ports, spawn, wait_until


class CatcherService:
    def __init__(self, root: Path, outbox: Path, port: int) -> None:
        self.outbox, self.port = outbox, port
        self.proc = Managed("mailcatcher", root / "mailcatcher.pid", "flowmail.mailcatcher",
                            root / "logs" / "mailcatcher.out")

    def fetch(self) -> None:
        """Nothing to fetch: aiosmtpd is a Python dependency."""

    def start(self) -> bool:
        if self.proc.running():
            return False
        require_free_ports("mailcatcher", [self.port])
        spawn(self.proc, [sys.executable, "-m", "flowmail.mailcatcher", "--dir", str(self.outbox),
                          "--port", str(self.port)])
        return True

    def healthy(self) -> bool:
        try:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=2) as smtp:
                return smtp.noop()[0] == 250
        except OSError:
            return False

    def wait(self, timeout_s: float = 30) -> None:
        wait_until(self.proc, self.healthy, timeout_s)
