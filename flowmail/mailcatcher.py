"""A local SMTP mail catcher: every accepted message becomes an ``.eml`` file in the outbox.

Like a real receiving server it has mailboxes that do not exist: a recipient whose local part
starts with ``nosuchuser`` is refused at RCPT with postfix's ``550 5.1.1 ... User unknown``
(how flowmail's hard bounces at send time are exercised).

Run as ``python -m flowmail.mailcatcher --dir DIR --port PORT``. Files are written to a
temporary name and renamed, so a reader never sees half a message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
import uuid
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

UNKNOWN_PREFIX = "nosuchuser"


class OutboxHandler:
    """aiosmtpd handler that stores each message with its envelope as an ``.eml`` file."""

    def __init__(self, outbox: Path) -> None:
        self.outbox = outbox
        outbox.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,  # noqa: N802
                          address: str, rcpt_options: list[str]) -> str:
        if address.lower().startswith(UNKNOWN_PREFIX):
            return ("550 5.1.1 <recipient>: Recipient address rejected: User unknown in "
                    "virtual mailbox table")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        content = envelope.original_content or b""
        header = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                  f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        tmp = self.outbox / f".{name}.tmp"
        tmp.write_bytes(header + content)
        os.replace(tmp, self.outbox / name)
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args()
    controller = Controller(OutboxHandler(args.dir), hostname=args.host, port=args.port,
                            data_size_limit=20 * 1024 * 1024, decode_data=False)
    controller.start()
    print(f"mail catcher on {args.host}:{args.port}, writing to {args.dir}", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
