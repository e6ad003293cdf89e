"""SMTP over a few reused, pipelining connections (providers/smtp_wire.py): emails wait in
one queue and each connection's line takes the next as soon as it can, so a message's
content and the next envelope leave in one write."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from processors.feedback import no_such_user
from providers.base import BlockingPool, Provider, ProviderError
from providers.smtp_wire import Job, SmtpConnection, SmtpDisconnected, SmtpError

if TYPE_CHECKING:
    from core.settings import Settings
    from processors.message import OutgoingEmail

log = logging.getLogger(__name__)

# RFC 5321 reply codes: 4xx may succeed later, 5xx will not.
_TRANSIENT_CODES = range(400, 500)
# a refusal before any email was named: the server or our settings, never the message
_SESSION_STAGES = {"connect", "greeting", "ehlo", "starttls", "auth"}


class SmtpProvider(Provider):
    name = "smtp"
    cost_per_1k = 0.0  # your own relay
    region = "eu"
    rate_per_s = 500.0

    @classmethod
    def from_settings(cls, settings: Settings, pool: BlockingPool) -> SmtpProvider:
        return cls(settings.smtp_host, settings.smtp_port, username=settings.smtp_username,
                   password=settings.smtp_password, tls=settings.smtp_tls,
                   pool_size=settings.smtp_pool_size, timeout_s=settings.smtp_timeout_s,
                   ca_file=settings.smtp_ca_file)

    def __init__(self, host: str, port: int, *, username: str = "", password: str = "",
                 tls: str = "none", pool_size: int = 4, timeout_s: float = 10.0,
                 ca_file: str = "") -> None:
        self._host, self._port = host, port
        self._options = {"tls": tls, "username": username, "password": password,
                         "ca_file": ca_file, "timeout_s": timeout_s}
        self._pool_size = max(1, pool_size)
        self._jobs: deque[Job] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()  # lines waiting for a job
        self._lines: list[asyncio.Task[None]] = []
        self._connections: set[SmtpConnection] = set()

    async def deliver(self, message: OutgoingEmail) -> str:
        if not self._lines:
            self._lines = [asyncio.create_task(self._line(), name=f"smtp-line-{n}")
                           for n in range(self._pool_size)]
        job = Job(message.sender[0], message.recipient[0], message.raw,
                  asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        while self._idle:  # wake one waiting line, if any
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        try:
            await job.done
        except SmtpError as err:
            raise self.classify(err) from err
        return message.message_id

    def _next(self) -> Job | None:
        return self._jobs.popleft() if self._jobs else None

    async def _line(self) -> None:
        """One connection's worth of sending: takes jobs while there are any, connects
        when it has one and no usable connection, and keeps the connection for the next."""
        connection: SmtpConnection | None = None
        job: Job | None = None
        while True:
            if job is None:
                job = self._next()
            if job is None:
                waiter = asyncio.get_running_loop().create_future()
                self._idle.append(waiter)
                await waiter
                continue
            if job.done.done():
                job = None
                continue
            if connection is None or not connection.usable:
                try:
                    connection = await SmtpConnection.connect(
                        self._host, self._port, **self._options)  # type: ignore[arg-type]
                except SmtpError as err:
                    job.settle(err)
                    job = None
                    continue
                self._connections.add(connection)
            handed: deque[Job] = deque([job], maxlen=2)  # the only ones not yet settled

            def following(handed: deque[Job] = handed) -> Job | None:
                upcoming = self._next()
                if upcoming is not None:
                    handed.append(upcoming)
                return upcoming

            try:
                job = await connection.send_queued(job, following)
            except Exception as err:  # a bug here must not leave senders waiting for ever
                log.exception("smtp line failed")
                for stuck in handed:
                    stuck.settle(SmtpDisconnected("message", f"{type(err).__name__}: {err}"))
                job = None
                connection.abort()
            except BaseException:
                connection.abort()  # cancelled mid-transaction: its state is unknown
                raise
            if not connection.usable:
                self._connections.discard(connection)
                connection.abort()

    def classify(self, error: BaseException) -> ProviderError:
        if isinstance(error, ProviderError):
            return error
        if isinstance(error, SmtpDisconnected) or not isinstance(error, SmtpError):
            # connection refused, timeouts, disconnects: the server may be back soon
            return ProviderError(self.name, str(error)[:300], transient=True)
        if error.stage in _SESSION_STAGES:  # e.g. a wrong password: fixable, not the email's
            return ProviderError(self.name, f"{error.stage} refused ({error.code})",
                                 transient=True, status=error.code or None)
        transient = error.code in _TRANSIENT_CODES
        what = (f"recipient refused ({error.code})" if error.stage == "rcpt"
                else f"{error.code} {error.text}")
        return ProviderError(self.name, what[:300], transient=transient, status=error.code,
                             provider_fault=transient,
                             bounce=error.stage == "rcpt" and no_such_user(error.code,
                                                                            error.text))

    async def close(self) -> None:
        for line in self._lines:
            line.cancel()
        await asyncio.gather(*self._lines, return_exceptions=True)
        self._lines = []
        for job in self._jobs:
            job.settle(SmtpDisconnected("mail", "provider closed"))
        self._jobs.clear()
        for connection in list(self._connections):
            if connection.usable:
                await connection.quit()
        self._connections.clear()
