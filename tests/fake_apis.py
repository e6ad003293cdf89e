"""The fake SaaS APIs as real local HTTP servers (and moto's server for SES), started once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.integration.helpers import poll

SENDGRID_KEY = "SG.test-key"
MAILGUN_KEY = "key-test"
MAILGUN_DOMAIN = "mg.shopflow.example"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class FakeApis:
    sendgrid_url: str
    mailgun_url: str
    ses_url: str

    def faults(self, url: str, **plan: object) -> None:
        requests.post(f"{url}/_fake/faults", json=plan, timeout=5).raise_for_status()

    def primary_down(self) -> None:
        """The integration tests' default: SendGrid answers 500, so mail fails over to SMTP."""
        self.reset()
        self.faults(self.sendgrid_url, status=500, count=-1)

    def reset(self) -> None:
        for url in (self.sendgrid_url, self.mailgun_url):
            requests.post(f"{url}/_fake/reset", timeout=5).raise_for_status()

    def accepted(self, url: str) -> list[dict]:
        return requests.get(f"{url}/_fake/messages", timeout=5).json()["accepted"]


def _start(argv: list[str], url: str, health: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=dict(os.environ))

    def up() -> bool:
        assert process.poll() is None, f"{argv[:4]} exited"
        try:
            return requests.get(f"{url}{health}", timeout=1).status_code < 500
        except requests.RequestException:
            return False

    poll(up, f"{argv[2]} fake to answer", timeout_s=60)
    return process


@pytest.fixture(scope="session")
def fake_apis() -> Iterator[FakeApis]:
    ports = [free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    processes = [
        _start([sys.executable, "-m", "flowmail.fakes", "sendgrid", "--port", str(ports[0]),
                "--api-key", SENDGRID_KEY], urls[0], "/_fake/messages"),
        _start([sys.executable, "-m", "flowmail.fakes", "mailgun", "--port", str(ports[1]),
                "--api-key", MAILGUN_KEY, "--domain", MAILGUN_DOMAIN], urls[1],
               "/_fake/messages"),
        _start([sys.executable, "-m", "moto.server", "-p", str(ports[2])], urls[2], "/"),
    ]
    yield FakeApis(*urls)
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
