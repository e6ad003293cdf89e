"""The SMTP provider against real aiosmtpd servers: the mail catcher's kind, and one that
answers with the 4xx/5xx codes real servers use."""

from __future__ import annotations

import socket
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller

from providers.base import ProviderError
from providers.smtp import SmtpProvider
from tests.providers.test_providers import message


class Answering:
    """Accepts, or answers RCPT/DATA with a chosen reply."""

    def __init__(self):
        self.rcpt_reply = None
        self.data_reply = None
        self.received = []

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_reply:
            return self.data_reply
        self.received.append(envelope.content)
        return "250 Message accepted"


@contextmanager
def serving(handler):
    """An aiosmtpd server with ``handler`` on a free port, for the block."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def server():
    handler = Answering()
    with serving(handler) as port:
        yield handler, port


async def test_sends_and_reuses_connections(server):
    handler, port = server
    provider = SmtpProvider("127.0.0.1", port, pool_size=2)
    for _ in range(5):
        result = await provider.send(message())
        assert result.provider == "smtp" and result.provider_message_id.startswith("<")
    await provider.close()
    assert len(handler.received) == 5


@pytest.mark.parametrize(("stage", "reply", "transient", "provider_fault"), [
    ("rcpt", "450 4.2.1 Mailbox busy, try later", True, True),
    ("rcpt", "550 5.1.1 No such user", False, False),
    ("data", "451 4.3.0 Local error, try later", True, True),
    ("data", "554 5.7.1 Message rejected as spam", False, False),
])
async def test_smtp_replies_are_classified(server, stage, reply, transient, provider_fault):
    handler, port = server
    setattr(handler, f"{stage}_reply", reply)
    provider = SmtpProvider("127.0.0.1", port)
    with pytest.raises(ProviderError) as err:
        await provider.send(message())
    assert (err.value.transient, err.value.provider_fault) == (transient, provider_fault)
    assert err.value.status == int(reply[:3])
    await provider.close()


async def test_unreachable_server_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    provider = SmtpProvider("127.0.0.1", port, timeout_s=2)
    with pytest.raises(ProviderError) as err:
        await provider.send(message())
    assert err.value.transient and err.value.provider_fault


@pytest.fixture
def tls_server(tmp_path):
    """aiosmtpd with STARTTLS required and AUTH (only over TLS), a self-signed certificate."""
    import ssl
    import subprocess

    from aiosmtpd.smtp import AuthResult

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"flowmail" and auth_data.password == b"s3cret"
        return AuthResult(success=ok)

    handler = Answering()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticate,
                            auth_require_tls=True, auth_required=True)
    controller.start()
    yield handler, port, str(cert)
    controller.stop()


async def test_starttls_and_authentication(tls_server):
    handler, port, ca = tls_server
    provider = SmtpProvider("127.0.0.1", port, tls="starttls", username="flowmail",
                            password="s3cret", ca_file=ca)
    await provider.send(message())
    await provider.close()
    assert len(handler.received) == 1


async def test_wrong_password_is_a_provider_fault(tls_server):
    _, port, ca = tls_server
    provider = SmtpProvider("127.0.0.1", port, tls="starttls", username="flowmail",
                            password="wrong", ca_file=ca)
    with pytest.raises(ProviderError) as err:
        await provider.send(message())
    assert err.value.transient and err.value.provider_fault


async def test_untrusted_certificate_is_refused(tls_server):
    _, port, _ = tls_server
    provider = SmtpProvider("127.0.0.1", port, tls="starttls", username="flowmail",
                            password="s3cret")  # system CAs do not know this certificate
    with pytest.raises(ProviderError):
        await provider.send(message())


@pytest.fixture
def pipelining_server(tmp_path):
    """Postfix's smtp-sink: it offers PIPELINING (aiosmtpd does not), as most relays do."""
    import os
    import subprocess
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["/usr/sbin/smtp-sink", "-d", str(tmp_path / "%M%S."), "-c", f"127.0.0.1:{port}",
            "100"]
    if os.geteuid() == 0:
        argv[1:1] = ["-u", "root"]
    sink = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "smtp-sink did not start"
            time.sleep(0.05)
    yield port, tmp_path
    sink.terminate()
    sink.wait(timeout=10)


async def test_pipelined_sends_arrive_whole_and_dot_stuffed(pipelining_server):
    """Two round trips per email (MAIL+RCPT+DATA together), many emails per connection;
    a body line starting with '.' survives (dot-stuffing)."""
    import asyncio
    import email
    from dataclasses import replace

    from providers.smtp_wire import SmtpConnection
    port, folder = pipelining_server
    connection = await SmtpConnection.connect("127.0.0.1", port)
    assert "PIPELINING" in connection.extensions
    await connection.quit()
    provider = SmtpProvider("127.0.0.1", port, pool_size=3)
    base = message()
    messages = [replace(base, text=f".leading dot {i}\n..two\nend",
                        recipient=(f"r{i}@example.org", "")) for i in range(30)]
    await asyncio.gather(*(provider.send(m) for m in messages))
    await provider.close()

    def arrived():
        return [email.message_from_bytes(p.read_bytes()) for p in folder.glob("*.*")]

    deadline = asyncio.get_running_loop().time() + 10
    while len(arrived()) < 30:
        assert asyncio.get_running_loop().time() < deadline, f"{len(arrived())} of 30 arrived"
        await asyncio.sleep(0.05)
    texts = sorted(next(p for p in m.walk() if p.get_content_type() == "text/plain")
                   .get_payload(decode=True).decode() for m in arrived())
    assert texts == sorted(f".leading dot {i}\n..two\nend" for i in range(30))


class PipeliningAnswering(Answering):
    """aiosmtpd reads commands one line at a time, so it takes pipelined groups; announced,
    it lets the refusals and a lost connection be tested with PIPELINING on."""

    def __init__(self):
        super().__init__()
        self.messages_per_connection = []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        self.messages_per_connection.append(0)
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address.startswith("unknown"):
            return "550 5.1.1 No such user"
        if address.startswith("busy"):
            return "450 4.2.1 Mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if envelope.rcpt_tos[0].startswith("spam"):
            return "554 5.7.1 Message rejected as spam"
        if envelope.rcpt_tos[0].startswith("drop"):
            server.transport.close()  # gone before the answer: the sender cannot know
            return "250 never seen"
        self.messages_per_connection[-1] += 1
        self.received.append(envelope.rcpt_tos[0])
        return "250 Message accepted"


async def test_pipelined_lines_survive_refusals_and_a_lost_connection():
    """A message's end and the next envelope leave in one write; refusals of one email
    (RCPT 550/450, content 554) leave the connection to the next; a connection lost after
    a message's content makes that email ambiguous (transient) and the email whose
    envelope had gone out with it is sent again on a new connection: once."""
    import asyncio
    from dataclasses import replace

    handler = PipeliningAnswering()
    with serving(handler) as port:
        provider = SmtpProvider("127.0.0.1", port, pool_size=2)
        base = message()
        names = [f"ok{i}" for i in range(40)] + ["unknown1", "busy1", "spam1", "drop1",
                                                  "unknown2", "spam2"]
        outcomes = await asyncio.gather(*(
            provider.send(replace(base, recipient=(f"{name}@example.org", "")))
            for name in names), return_exceptions=True)
        await provider.close()
    by_name = dict(zip(names, outcomes, strict=True))
    for name, outcome in by_name.items():
        if name.startswith("ok"):
            assert not isinstance(outcome, BaseException), (name, outcome)
        else:
            assert isinstance(outcome, ProviderError), (name, outcome)
    assert by_name["unknown1"].bounce and not by_name["unknown1"].transient
    assert by_name["busy1"].transient and by_name["busy1"].status == 450
    assert by_name["spam1"].status == 554 and not by_name["spam1"].transient
    assert by_name["drop1"].transient and by_name["drop1"].status is None
    assert sorted(handler.received) == sorted(f"ok{i}@example.org" for i in range(40))
    # connections are kept: two lines, one more after the lost one
    assert len(handler.messages_per_connection) <= 3
    assert max(handler.messages_per_connection) > 5


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_server_that_stops_answering_times_out_and_the_next_connection_sends(pipelining):
    """A real socket server that greets, answers EHLO, then answers nothing on its first
    connection: the wait ends at the timeout (the connection's watchdog), as a transient
    error; a later email, on a new connection that answers, is sent."""
    import asyncio
    import time

    from providers.smtp_wire import SmtpConnection, SmtpDisconnected
    connections = []

    async def session(reader, writer):
        connections.append(writer)
        silent = len(connections) == 1
        writer.write(b"220 test ESMTP\r\n")
        while line := await reader.readline():
            if line.upper().startswith(b"EHLO"):
                writer.write(b"250-test\r\n" + (b"250-PIPELINING\r\n" if pipelining else b"")
                             + b"250 8BITMIME\r\n")
            elif silent:
                continue
            elif line.upper().startswith(b"DATA"):
                writer.write(b"354 go on\r\n")
                while (await reader.readline()) != b".\r\n":
                    pass
                writer.write(b"250 queued\r\n")
            elif line.upper().startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        connection = await SmtpConnection.connect("127.0.0.1", port, timeout_s=1)
        began = time.monotonic()
        with pytest.raises(SmtpDisconnected, match="no reply within 1s"):
            await asyncio.wait_for(connection.send(  # a watchdog that never fires: TimeoutError
                "shop@example.org", "anna@example.org", b"Subject: x\r\n\r\nx"), 10)
        assert 0.9 < time.monotonic() - began < 3
        connection.abort()
        provider = SmtpProvider("127.0.0.1", port, timeout_s=1, pool_size=1)
        result = await provider.send(message())
        assert result.provider == "smtp"
        await provider.close()
    finally:
        server.close()
        for writer in connections:
            writer.close()
        await server.wait_closed()
