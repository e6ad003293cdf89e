"""SMTP with a small pool of reused, pipelining connections (providers/smtp_wire.py)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from processors.feedback import no_such_user
from providers.base import BlockingPool, Provider, ProviderError
from providers.smtp_wire import SmtpConnection, SmtpDisconnected, SmtpError

if TYPE_CHECKING:
    from core.settings import Settings
    from processors.message import OutgoingEmail

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
        self._pool: asyncio.LifoQueue[SmtpConnection] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(pool_size)

    async def _acquire(self) -> SmtpConnection:
        await self._slots.acquire()
        while not self._pool.empty():
            connection = self._pool.get_nowait()
            if connection.usable:
                return connection
        try:
            return await SmtpConnection.connect(self._host, self._port,
                                                **self._options)  # type: ignore[arg-type]
        except BaseException:
            self._slots.release()
            raise

    def _release(self, connection: SmtpConnection) -> None:
        if connection.usable:
            self._pool.put_nowait(connection)
        self._slots.release()

    async def deliver(self, message: OutgoingEmail) -> str:
        try:
            connection = await self._acquire()
        except SmtpError as err:
            raise self.classify(err) from err
        try:
            await connection.send(message.sender[0], message.recipient[0], message.raw)
        except SmtpError as err:
            if isinstance(err, SmtpDisconnected):
                connection.abort()
            raise self.classify(err) from err
        except BaseException:
            connection.abort()  # cancelled mid-transaction: the connection's state is unknown
            raise
        finally:
            self._release(connection)
        return message.message_id

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
        while not self._pool.empty():
            await self._pool.get_nowait().quit()
