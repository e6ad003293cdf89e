"""`flowmail gdpr export` on the real stack: a person's profile, consent decisions,
suppression and every email sent to them with its statuses, from Kafka and OpenSearch; only
their shop's; the address never printed."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid

from flowmail.gdpr import emails_of
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from processors.consent import change_event
from processors.keys import idempotency_key, recipient_key
from tests.integration.helpers import outbox, poll
from tests.integration.test_all_event_types import fresh_user


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowmail", "gdpr", *args],
                          capture_output=True, text=True, timeout=180, env=dict(os.environ))


def test_export_holds_what_was_sent_and_decided_and_nothing_of_another_shop(
        worker, settings, tmp_path):
    signup, _ = fresh_user(31)
    address, user_id = signup["user"]["email"], signup["user"]["user_id"]
    elsewhere = json.loads(json.dumps(signup, default=str))  # the same person, another shop
    elsewhere.update(event_id=str(uuid.uuid4()), occurred_at=signup["occurred_at"])
    elsewhere["shop"] = {**signup["shop"], "shop_id": "shop-other", "name": "Other Shop"}
    order = order_placed(31)
    order["customer"].update(customer_id=user_id, email=address)
    decision = change_event(str(uuid.uuid4()), "shop-042", user_id, "product_news", True,
                            "checkout", "checkout-2026-01", dt.datetime.now(dt.UTC))
    with Publisher(settings.kafka_bootstrap) as publisher:
        publisher.publish("user.created", signup)
        publisher.publish("user.created", elsewhere)
        publisher.publish("order.placed", order)
        publisher.publish("consent.changed", decision)
    keys = [idempotency_key(signup["event_id"], "welcome", address),
            idempotency_key(order["event_id"], "order_confirmation", address)]
    poll(lambda: all(k in outbox(settings.outbox_dir) for k in keys), "both emails sent", 120)
    key = recipient_key(address, settings.pseudonym_secret.encode())
    poll(lambda: {e["email_type"] for e in emails_of(settings, "shop-042", key)
                  if any(x["status"] == "sent" for x in e["events"])}
         >= {"welcome", "order_confirmation"}, "their delivery events indexed", 120)

    out = tmp_path / "export.json"

    def exported() -> dict | None:
        done = cli("export", "--shop", "shop-042", "--email", address.upper(), "--out",
                   str(out))
        assert done.returncode == 0, done.stderr
        assert address not in done.stdout + done.stderr  # never printed
        found = json.loads(out.read_text())
        return found if found["consent_history"] and found["profiles"] and (
            "product_news" in found["profiles"][0].get("consent", {})) else None

    found = poll(exported, "the consent decision in the export", 90)
    assert found["person"] == {"email": address, "shop_id": "shop-042"}
    [profile] = found["profiles"]  # not the other shop's
    assert profile["user_id"] == user_id and profile["email"] == address
    assert profile["consent"]["marketing"]["source"] == "signup"
    assert profile["consent"]["product_news"]["granted"] is True
    [history] = found["consent_history"]
    assert (history["category"], history["granted"], history["source"],
            history["wording_version"]) == ("product_news", True, "checkout", "checkout-2026-01")
    types = {e["email_type"]: e for e in found["emails"]}
    assert {"welcome", "order_confirmation"} <= set(types)
    assert any(x["status"] == "sent" for x in types["order_confirmation"]["events"])
    assert "Other Shop" not in out.read_text()


def test_export_refuses_what_is_not_an_address(settings, tmp_path):
    done = cli("export", "--shop", "shop-042", "--email", "not an address\r\nBcc: x@y",
               "--out", str(tmp_path / "x.json"))
    assert done.returncode == 2 and "--email" in done.stderr
    assert not (tmp_path / "x.json").exists()
