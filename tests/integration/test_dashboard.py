"""The live dashboard in headless Chromium: it loads, shows what the test sent, and updates
while mail flows (server-sent events), against the session worker on the real stack."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import requests

from flowmail.samples import campaign_launched
from tests.integration.browser import Browser
from tests.integration.helpers import free_port, poll
from tests.integration.test_all_event_types import fresh_user
from tests.integration.test_delivery import publish, statuses

CAMPAIGN_ROW = """[...document.querySelectorAll('#campaigns tr')].map(r =>
  [...r.cells].map(c => c.textContent)).filter(r => r[0] === %r)"""


def test_the_dashboard_shows_the_mail_and_updates_while_it_flows(worker, settings, tmp_path):
    port = free_port()
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "flowmail", "dashboard", "--port", str(port)],
        env={**os.environ, "FLOWMAIL_DASHBOARD_REFRESH_S": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    browser = Browser(tmp_path / "profile")
    try:
        base = f"http://127.0.0.1:{port}"
        poll(lambda: _answers(base), "the dashboard to answer", timeout_s=60)
        page = browser.open(base + "/")
        poll(lambda: int(page.evaluate(
            "document.getElementById('dashboard')?.dataset.updates ?? 0")) >= 1,
            "the first update on the page")
        first = int(page.evaluate("Number(document.getElementById('sent-total').textContent)"))

        users = [fresh_user(800 + i) for i in range(3)]
        tag = f"dash-{uuid.uuid4().hex[:6]}"
        for user, _ in users:
            user["tags"] = [tag]
            publish(settings, "user.created", user)
        campaign = campaign_launched(f"dash-{uuid.uuid4().hex[:6]}", tags_any=[tag])
        publish(settings, "campaign.launched", campaign)
        poll(lambda: [s for s, _ in statuses(settings, campaign)].count("sent") == 3,
             "the campaign's three emails sent")

        # campaign, shop, phase, targeted, handed out, sent, failed, ...
        row = poll(lambda: (lambda r: r if r and r[0][5] == "3" and r[0][2] == "done"
                            else None)(page.evaluate(CAMPAIGN_ROW % campaign["campaign_id"])),
            "the campaign on the page, done, with its three emails sent")
        assert row[0][1] == campaign["shop"]["shop_id"]
        assert row[0][3] == "3" and row[0][4] == "3" and row[0][6] == "0"
        # it moved without a reload: more sent than when the page opened, and more updates
        poll(lambda: int(page.evaluate(
            "Number(document.getElementById('sent-total').textContent)")) >= first + 6,
             "the throughput to grow on the page (3 welcomes, 3 campaign emails)")
        priorities = page.evaluate(
            "[...document.querySelectorAll('#priorities tr[data-priority]')]"
            ".map(r => r.dataset.priority)")
        assert "marketing" in priorities and "critical" in priorities
        providers = page.evaluate("[...document.querySelectorAll('#providers tr')]"
                                  ".slice(1).map(r => r.cells[0].textContent)")
        assert "mailgun" in providers  # the campaign's provider in this session
    finally:
        browser.close()
        dashboard.terminate()
        dashboard.wait(10)


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/snapshot", timeout=30).ok
    except requests.RequestException:
        return False
