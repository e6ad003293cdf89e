"""`flowmail report deliverability` on the real OpenSearch: known delivery events in, the
counts and rates they make out (per provider, domain, type, campaign variant), people's opens
apart from privacy prefetch, one shop's report without the other's mail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import requests

from core.vocab import DeliveryStatus
from processors.analytics import bulk_body, index_template
from processors.commands import DeliveryEvent


def _event(status: str, key: str, provider: str, domain: str, shop: str = "shop-a",
           agent: str | None = None, campaign: str | None = "spring", variant: str = "A",
           email_type: str = "marketing_campaign") -> DeliveryEvent:
    return DeliveryEvent(
        event_id=uuid.uuid4().hex, status=DeliveryStatus(status), idempotency_key=key,
        command_id="", email_type=email_type, priority="marketing", locale="en", shop_id=shop,
        recipient_key="r" * 32, recipient_domain=domain, attempt=1, source_event_id="",
        occurred_at=int(time.time() * 1000) - 60_000, provider=provider,
        campaign_id=campaign, variant=variant if campaign else None, agent=agent)


def test_the_report_counts_what_was_indexed(stack, settings, tmp_path):
    prefix = f"report-{uuid.uuid4().hex[:8]}"
    base = settings.opensearch_url
    requests.put(f"{base}/_index_template/{prefix}", json=index_template(prefix),
                 timeout=30).raise_for_status()
    events = []
    for index in range(10):  # 10 sent: 6 via sendgrid to gmail.test, 4 via mailgun to web.test
        key = f"k{index}"
        provider, domain = ("sendgrid", "gmail.test") if index < 6 else ("mailgun", "web.test")
        variant = "A" if index % 2 == 0 else "B"
        events.append(_event("sent", key, provider, domain, variant=variant))
        if index < 8:
            events.append(_event("delivered", key, provider, domain, variant=variant))
        else:
            events.append(_event("bounced", key, provider, domain, variant=variant))
    for key in ("k0", "k0", "k2", "k3"):  # k0 opened twice: one email opened
        events.append(_event("opened", key, "flowmail", "gmail.test", agent="human",
                             variant="A" if int(key[1]) % 2 == 0 else "B"))
    events.append(_event("opened", "k1", "flowmail", "gmail.test", agent="prefetch"))
    events.append(_event("clicked", "k2", "flowmail", "gmail.test", agent="human"))
    events.append(_event("clicked", "k4", "flowmail", "gmail.test", agent="scanner"))
    events.append(_event("complained", "k5", "sendgrid", "gmail.test"))
    # another shop's mail, and transactional mail without a campaign
    events.append(_event("sent", "x1", "smtp", "other.test", shop="shop-b", campaign=None,
                         email_type="order_confirmation"))
    answer = requests.post(f"{base}/_bulk", data=bulk_body(prefix, events), timeout=30,
                           headers={"Content-Type": "application/x-ndjson"},
                           params={"refresh": "true"})
    assert not answer.json()["errors"], answer.text[:500]

    env = {**os.environ, "FLOWMAIL_INDEX_PREFIX": prefix}
    run = subprocess.run([sys.executable, "-m", "flowmail", "report", "deliverability",
                          "--since", "1h", "--shop", "shop-a", "--json", "--html",
                          str(tmp_path / "report.html")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    [everything] = report["tables"]["all"]
    assert (everything["sent"], everything["delivered"], everything["bounced"],
            everything["complained"], everything["opened"], everything["clicked"],
            everything["machine_opens"]) == (10, 8, 2, 1, 3, 1, 1)
    assert everything["bounced_rate"] == 0.2 and everything["opened_rate"] == 0.3
    providers = {row["key"]: row for row in report["tables"]["provider"]}
    assert (providers["sendgrid"]["sent"], providers["sendgrid"]["delivered"]) == (6, 6)
    assert (providers["mailgun"]["sent"], providers["mailgun"]["bounced"]) == (4, 2)
    assert "smtp" not in providers  # shop-b's
    domains = {row["key"]: row for row in report["tables"]["recipient_domain"]}
    assert domains["web.test"]["bounced_rate"] == 0.5
    variants = {row["key"]: row for row in report["tables"]["campaign"]}
    assert variants["spring / A"]["sent"] == 5 and variants["spring / B"]["sent"] == 5
    assert variants["spring / A"]["opened"] == 2 and variants["spring / B"]["opened"] == 1
    page = (tmp_path / "report.html").read_text()
    assert "By campaign and variant" in page and "spring / A" in page

    text = subprocess.run([sys.executable, "-m", "flowmail", "report", "deliverability",
                           "--since", "1h"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert text.returncode == 0 and "smtp" in text.stdout  # every shop without --shop
    bad = subprocess.run([sys.executable, "-m", "flowmail", "report", "deliverability",
                          "--since", "yesterday-ish"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "use 7d, 24h" in bad.stderr
