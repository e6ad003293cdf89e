"""SMTP through aiosmtplib, with a small pool of reused connections."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING

import aiosmtplib

from providers.base import ProviderError, SendResult

if TYPE_CHECKING:
    from processors.message import OutgoingEmail

# RFC 5321 reply codes: 4xx may succeed later, 5xx will not.
_TRANSIENT_CODES = range(400, 500)


class SmtpProvider:
    name = "smtp"

    def __init__(self, host: str, port: int, *, username: str = "", password: str = "",
                 tls: str = "none", pool_size: int = 4, timeout_s: float = 10.0,
                 ca_file: str = "") -> None:
        self._options = {
            "hostname": host, "port": port, "timeout": timeout_s,
            "use_tls": tls == "tls", "start_tls": True if tls == "starttls" else False,
            "username": username or None, "password": password or None,
            "cert_bundle": ca_file or None,  # None: the system's CAs
        }
        self._pool: asyncio.LifoQueue[aiosmtplib.SMTP] = asyncio.LifoQueue()
        self._slots = asyncio.Semaphore(pool_size)

    async def _acquire(self) -> aiosmtplib.SMTP:
        await self._slots.acquire()
        while not self._pool.empty():
            client = self._pool.get_nowait()
            if client.is_connected:
                return client
        client = aiosmtplib.SMTP(**self._options)
        try:
            await client.connect()
        except BaseException:
            self._slots.release()
            raise
        return client

    def _release(self, client: aiosmtplib.SMTP, healthy: bool) -> None:
        if healthy and client.is_connected:
            self._pool.put_nowait(client)
        else:
            client.close()
        self._slots.release()

    async def send(self, message: OutgoingEmail) -> SendResult:
        try:
            client = await self._acquire()
        except Exception as err:
            raise self.classify(err) from err
        healthy = False
        try:
            await client.sendmail(message.sender[0], [message.recipient[0]], message.raw)
            healthy = True
        except aiosmtplib.SMTPRecipientsRefused as err:
            healthy = True  # the connection is fine; the recipient is not
            raise self.classify(err) from err
        except Exception as err:
            raise self.classify(err) from err
        finally:
            self._release(client, healthy)
        return SendResult(self.name, message.message_id)

    async def send_many(self, messages: Sequence[OutgoingEmail]
                        ) -> list[SendResult | ProviderError]:
        async def one(message: OutgoingEmail) -> SendResult | ProviderError:
            try:
                return await self.send(message)
            except ProviderError as err:
                return err
        return list(await asyncio.gather(*(one(m) for m in messages)))

    def classify(self, error: BaseException) -> ProviderError:
        if isinstance(error, ProviderError):
            return error
        if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
            codes = [refusal.code for refusal in error.recipients]
            transient = all(code in _TRANSIENT_CODES for code in codes)
            return ProviderError(self.name, f"recipient refused ({codes})", transient=transient,
                                 status=codes[0] if codes else None, provider_fault=transient)
        if isinstance(error, aiosmtplib.SMTPAuthenticationError):
            return ProviderError(self.name, f"authentication failed ({error.code})",
                                 transient=True, status=error.code)
        if isinstance(error, aiosmtplib.SMTPResponseException):
            transient = error.code in _TRANSIENT_CODES
            return ProviderError(self.name, f"{error.code} {error.message}"[:300],
                                 transient=transient, status=error.code,
                                 provider_fault=transient)
        # connection refused, timeouts, disconnects: the server may be back soon
        return ProviderError(self.name, f"{type(error).__name__}: {error}"[:300], transient=True)

    async def close(self) -> None:
        while not self._pool.empty():
            client = self._pool.get_nowait()
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()
