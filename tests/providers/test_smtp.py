"""The SMTP provider against real aiosmtpd servers: the mail catcher's kind, and one that
answers with the 4xx/5xx codes real servers use."""

from __future__ import annotations

import socket

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


@pytest.fixture
def server():
    handler = Answering()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


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
