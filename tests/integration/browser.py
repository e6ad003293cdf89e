"""Headless Chromium (Debian's package) driven over the DevTools protocol, for pages that
change after they load (the dashboard): open a page, then evaluate JavaScript in it as often
as a test likes. aiohttp's websocket client speaks the protocol; nothing else is needed."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import requests

from tests.integration.helpers import free_port, poll

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    def __init__(self, profile: Path) -> None:
        assert CHROMIUM, "chromium is not installed: .ci/run installs Debian's chromium package"
        self.port = free_port()
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--remote-debugging-port={self.port}", f"--user-data-dir={profile}",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        poll(self._up, "Chromium's DevTools endpoint", timeout_s=60)

    def _up(self) -> bool:
        assert self.process.poll() is None, "Chromium exited"
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/json/version", timeout=1).ok
        except requests.RequestException:
            return False

    def open(self, url: str) -> Page:
        target = requests.put(f"http://127.0.0.1:{self.port}/json/new?{quote(url, safe=':/?=&')}",
                              timeout=10).json()
        page = Page(target["webSocketDebuggerUrl"])
        poll(lambda: page.evaluate("document.readyState === 'complete' && location.href") == url,
             f"{url} loaded")
        return page

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Page:
    def __init__(self, socket_url: str) -> None:
        self.socket_url = socket_url

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        return asyncio.run(self._evaluate(expression))

    async def _evaluate(self, expression: str) -> Any:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                self.socket_url, max_msg_size=0) as socket:
            await socket.send_str(json.dumps({"id": 1, "method": "Runtime.evaluate", "params": {
                "expression": expression, "returnByValue": True}}))
            async for message in socket:
                answer = json.loads(message.data)
                if answer.get("id") == 1:
                    result = answer["result"]
                    if "exceptionDetails" in result:
                        raise AssertionError(f"{expression}: {result['exceptionDetails']}")
                    return result["result"].get("value")
        raise AssertionError("the page closed its DevTools socket")
