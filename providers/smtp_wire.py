"""One SMTP client connection, with PIPELINING (RFC 2920): an email is two round trips, not
four. Why not aiosmtplib here: it cannot pipeline (its protocol reads one reply per written
command) and spent ~0.55 ms of CPU per 10 KB message against smtp-sink (two regular
expressions over every body, a future and a timeout per command); this costs ~0.1 ms
(docs/performance.md, "SMTP"). The servers it is tested against: aiosmtpd (no PIPELINING;
STARTTLS, AUTH, refusals) and postfix's smtp-sink (PIPELINING; benchmark, integration tests).

Only what flowmail sends: one sender, one recipient, a message already in CRLF lines.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CRLF = b"\r\n"
MAX_REPLY_BYTES = 64 * 1024


class SmtpError(Exception):
    """A reply the transaction cannot go on with (``code`` -1: no reply, the connection)."""

    def __init__(self, stage: str, code: int, text: str) -> None:
        super().__init__(f"{stage}: {code} {text}"[:300])
        self.stage, self.code, self.text = stage, code, text


class SmtpDisconnected(SmtpError):
    def __init__(self, stage: str, detail: str) -> None:
        super().__init__(stage, -1, detail)


class _Replies(asyncio.Protocol):
    """Parses complete replies (``250-...`` lines up to ``250 ...``) as they arrive."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._replies: deque[tuple[int, str]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.lost: str | None = None
        self._deadline: float | None = None  # of the wait under way (``take``)
        self._expired = False
        self._watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            reply = self._take_reply()
            if reply is None:
                break
            self._replies.append(reply)
        if len(self._buffer) > MAX_REPLY_BYTES:
            self._lose("reply too long")
        self._wake()

    def _take_reply(self) -> tuple[int, str] | None:
        offset, lines = 0, []
        while True:
            end = self._buffer.find(b"\n", offset)
            if end == -1:
                return None
            line = bytes(self._buffer[offset:end]).rstrip(b"\r")
            offset = end + 1
            lines.append(line[4:].decode("utf-8", "replace"))
            if line[3:4] != b"-":
                del self._buffer[:offset]
                try:
                    return int(line[:3]), "\n".join(lines)
                except ValueError:
                    return 0, f"malformed reply {line[:40]!r}"

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(f"connection lost ({exc or 'closed by the server'})")

    def eof_received(self) -> bool:
        self._lose("connection closed by the server")
        return False

    def _lose(self, why: str) -> None:
        self.lost = self.lost or why
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def take(self, count: int, stage: str, timeout_s: float) -> list[tuple[int, str]]:
        """The next ``count`` replies, in order. A wait sets a deadline that one watchdog
        timer of the connection checks, not a timer of its own: an ``asyncio.timeout``
        context was a tenth of the SMTP path's CPU, a timer per wait (two an email) still
        3 µs an email (profiled)."""
        if len(self._replies) < count:
            loop = asyncio.get_running_loop()
            self._deadline = deadline = loop.time() + timeout_s
            if self._watchdog is None or self._watchdog.when() > deadline:
                if self._watchdog is not None:
                    self._watchdog.cancel()
                self._watchdog = loop.call_at(deadline, self._watch)
            try:
                while len(self._replies) < count:
                    if self._expired:
                        raise SmtpDisconnected(stage, f"no reply within {timeout_s:.0f}s")
                    if self.lost:
                        raise SmtpDisconnected(stage, self.lost)
                    self._waiter = loop.create_future()
                    await self._waiter
            finally:
                self._deadline = None
                self._expired = False
        return [self._replies.popleft() for _ in range(count)]

    def _watch(self) -> None:
        """The watchdog: expires a wait past its deadline, else looks again at the deadline
        of the wait under way, if any (none: it stops until the next wait starts it)."""
        self._watchdog = None
        if self._deadline is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() >= self._deadline:
            self._expired = True
            self._wake()
        else:
            self._watchdog = loop.call_at(self._deadline, self._watch)

    def write(self, data: bytes, stage: str) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise SmtpDisconnected(stage, self.lost or "connection closed")
        self.transport.write(data)


class SmtpConnection:
    """Open with ``connect``; ``send`` one email at a time; ``close`` when done."""

    def __init__(self, protocol: _Replies, extensions: set[str], timeout_s: float) -> None:
        self._protocol, self.extensions, self.timeout_s = protocol, extensions, timeout_s

    @property
    def usable(self) -> bool:
        return self._protocol.lost is None

    @classmethod
    async def connect(cls, host: str, port: int, *, tls: str = "none", username: str = "",
                      password: str = "", ca_file: str = "", timeout_s: float = 10.0,
                      local_name: str = "flowmail.local") -> SmtpConnection:
        """``tls``: none, starttls (required, not opportunistic) or tls (implicit)."""
        loop = asyncio.get_running_loop()
        context = ssl.create_default_context(cafile=ca_file or None) if tls != "none" else None
        try:
            async with asyncio.timeout(timeout_s):
                _, protocol = await loop.create_connection(
                    _Replies, host, port, ssl=context if tls == "tls" else None,
                    server_hostname=host if tls == "tls" else None)
        except TimeoutError:
            raise SmtpDisconnected("connect", f"no connection within {timeout_s:.0f}s") from None
        except OSError as err:  # refused, unreachable, TLS handshake failed
            raise SmtpDisconnected("connect", f"{type(err).__name__}: {err}") from err
        connection = cls(protocol, set(), timeout_s)
        try:
            await connection._expect(220, "greeting")
            await connection._ehlo(local_name)
            if tls == "starttls":
                await connection._starttls(context, host, local_name)  # type: ignore[arg-type]
            if username:
                await connection._authenticate(username, password)
        except BaseException:
            connection.abort()
            raise
        return connection

    async def _command(self, line: str, stage: str) -> tuple[int, str]:
        self._protocol.write(line.encode() + CRLF, stage)
        return (await self._protocol.take(1, stage, self.timeout_s))[0]

    async def _expect(self, code: int, stage: str, line: str | None = None) -> str:
        if line is None:
            got, text = (await self._protocol.take(1, stage, self.timeout_s))[0]
        else:
            got, text = await self._command(line, stage)
        if got != code:
            raise SmtpError(stage, got, text)
        return text

    async def _ehlo(self, local_name: str) -> None:
        text = await self._expect(250, "ehlo", f"EHLO {local_name}")
        self.extensions = {line.split(" ")[0].upper() for line in text.split("\n")[1:]}
        self._auth = next((line.upper().split()[1:] for line in text.split("\n")[1:]
                           if line.upper().startswith("AUTH")), [])

    async def _starttls(self, context: ssl.SSLContext, host: str, local_name: str) -> None:
        if "STARTTLS" not in self.extensions:
            raise SmtpError("starttls", 0, "the server does not offer STARTTLS")
        await self._expect(220, "starttls", "STARTTLS")
        protocol = self._protocol
        assert protocol.transport is not None
        try:
            async with asyncio.timeout(self.timeout_s):
                protocol.transport = await asyncio.get_running_loop().start_tls(  # type: ignore[assignment]
                    protocol.transport, protocol, context, server_hostname=host)
        except (OSError, TimeoutError, ssl.SSLError) as err:
            raise SmtpDisconnected("starttls", f"{type(err).__name__}: {err}") from err
        await self._ehlo(local_name)

    async def _authenticate(self, username: str, password: str) -> None:
        if "PLAIN" in self._auth or not self._auth:
            token = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            await self._expect(235, "auth", f"AUTH PLAIN {token}")
            return
        await self._expect(334, "auth", "AUTH LOGIN")
        await self._expect(334, "auth", base64.b64encode(username.encode()).decode())
        await self._expect(235, "auth", base64.b64encode(password.encode()).decode())

    async def send(self, sender: str, recipient: str, message: bytes) -> str:
        """One email; returns the server's final reply text. Raises SmtpError with the stage
        (mail, rcpt, data, message) whose reply refused it; the connection stays usable
        after a refusal (the transaction is reset)."""
        envelope = _envelope(sender, recipient, self.extensions)
        protocol = self._protocol
        if "PIPELINING" in self.extensions:
            protocol.write(envelope, "mail")
            replies = await protocol.take(3, "mail", self.timeout_s)
        else:
            replies = []
            for line, stage in zip(envelope.split(CRLF)[:3], ("mail", "rcpt", "data"),
                                   strict=True):
                reply = await self._command(line.decode(), stage)
                replies.append(reply)
                if reply[0] >= 400:
                    break
        await self._accept_envelope(replies)
        protocol.write(_dot_stuffed(message), "message")
        return _accepted(*(await protocol.take(1, "message", self.timeout_s))[0])

    async def send_queued(self, job: Job, following: Callable[[], Job | None]) -> Job | None:
        """``job``, then every job ``following`` hands out until it has none, each settled
        (its future: the final reply text, or the SmtpError that refused it). With
        PIPELINING one write carries a message's content and the next envelope (RFC 2920
        3.1: message content may be the first command of a group): one write and one read
        per email instead of two each. Returns a job whose envelope went out but whose
        content did not when the connection was lost (nothing of it was sent: send it
        elsewhere); the connection is then no longer ``usable``."""
        if "PIPELINING" not in self.extensions:
            while job is not None:
                try:
                    job.settle(await self.send(job.sender, job.recipient, job.message))
                except SmtpError as err:
                    job.settle(err)
                    if isinstance(err, SmtpDisconnected):
                        return None
                job = _next_job(following, self.extensions)
            return None
        protocol = self._protocol
        job = _first_job(job, following, self.extensions)
        if job is not None:
            protocol.write(job.envelope, "mail")
        while job is not None:
            try:
                await self._accept_envelope(await protocol.take(3, "mail", self.timeout_s))
            except SmtpError as err:
                job.settle(err)
                if isinstance(err, SmtpDisconnected):
                    return None
                job = _next_job(following, self.extensions)
                if job is not None:
                    protocol.write(job.envelope, "mail")
                continue
            after = _next_job(following, self.extensions)
            protocol.write(_dot_stuffed(job.message) + (after.envelope if after else b""),
                           "message")
            try:
                job.settle(_accepted(*(await protocol.take(1, "message", self.timeout_s))[0]))
            except SmtpError as err:
                job.settle(err)
                if isinstance(err, SmtpDisconnected):
                    return after
            job = after
        return None

    async def _accept_envelope(self, replies: list[tuple[int, str]]) -> None:
        """The MAIL, RCPT and DATA replies; a refusal resets the transaction and raises."""
        for (code, text), (stage, wanted) in zip(
                replies, (("mail", (250,)), ("rcpt", (250, 251)), ("data", (354,))),
                strict=False):
            if code not in wanted:
                await self._reset(data_started=len(replies) == 3 and replies[2][0] == 354)
                raise SmtpError(stage, code, text)

    async def _reset(self, data_started: bool) -> None:
        """After a refusal: end a DATA the server opened anyway, then RSET."""
        try:
            if data_started:
                self._protocol.write(b".\r\n", "reset")
                await self._protocol.take(1, "reset", self.timeout_s)
            await self._command("RSET", "reset")
        except SmtpError:
            self.abort()

    async def quit(self) -> None:
        try:
            await self._command("QUIT", "quit")
        except SmtpError:
            pass
        self.abort()

    def abort(self) -> None:
        transport = self._protocol.transport
        if transport is not None:
            transport.close()
        self._protocol.lost = self._protocol.lost or "closed"


@dataclass(eq=False)
class Job:
    """One email for ``SmtpConnection.send_queued``; ``done`` gets the final reply text or
    the SmtpError that refused it."""

    sender: str
    recipient: str
    message: bytes
    done: asyncio.Future[str]
    envelope: bytes = b""

    def settle(self, outcome: str | SmtpError) -> None:
        if self.done.done():  # its sender stopped waiting (shutdown)
            return
        if isinstance(outcome, SmtpError):
            self.done.set_exception(outcome)
        else:
            self.done.set_result(outcome)


def _first_job(job: Job | None, following: Callable[[], Job | None],
               extensions: set[str]) -> Job | None:
    """``job`` if it can go (its envelope built), else the next that can."""
    if job is not None and not job.done.done():
        try:
            job.envelope = _envelope(job.sender, job.recipient, extensions)
            return job
        except SmtpError as err:
            job.settle(err)
    return _next_job(following, extensions)


def _next_job(following: Callable[[], Job | None], extensions: set[str]) -> Job | None:
    while (job := following()) is not None:
        if job.done.done():  # nobody waits for it any more
            continue
        try:
            job.envelope = _envelope(job.sender, job.recipient, extensions)
        except SmtpError as err:
            job.settle(err)
            continue
        return job
    return None


def _envelope(sender: str, recipient: str, extensions: set[str]) -> bytes:
    """MAIL, RCPT and DATA for one email; refuses what could smuggle a command."""
    for address in (sender, recipient):
        if any(ch in address for ch in "\r\n<>") or not address.isprintable():
            raise SmtpError("mail", 501, "address with forbidden characters")
    options = ""
    if not (sender.isascii() and recipient.isascii()):
        if "SMTPUTF8" not in extensions:
            raise SmtpError("mail", 553, "non-ASCII address and no SMTPUTF8")
        options = " SMTPUTF8"
    return f"MAIL FROM:<{sender}>{options}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()


def _accepted(code: int, text: str) -> str:
    if code != 250:
        raise SmtpError("message", code, text)
    return text


def _dot_stuffed(message: bytes) -> bytes:
    """RFC 5321 4.5.2: a line starting with '.' gets another; then the end-of-data line."""
    if message.startswith(b"."):
        message = b"." + message
    message = message.replace(b"\r\n.", b"\r\n..")
    if not message.endswith(CRLF):
        message += CRLF
    return message + b".\r\n"
