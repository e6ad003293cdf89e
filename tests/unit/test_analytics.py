import json

from core.vocab import DeliveryStatus
from processors.analytics import (
    bulk_body,
    index_name,
    index_template,
    missing_properties,
    to_document,
)
from processors.commands import DeliveryEvent


def event(**overrides):
    values = dict(event_id="e1", status=DeliveryStatus.SENT, idempotency_key="k", command_id="c",
                  email_type="order_confirmation", priority="transactional", locale="de",
                  shop_id="s", recipient_key="r", recipient_domain="example.org", attempt=1,
                  source_event_id="src", occurred_at=1_798_761_600_000, provider="smtp",
                  provider_message_id="<k@x>", latency_ms=12.5)
    values.update(overrides)
    return DeliveryEvent(**values)


def test_monthly_index_by_event_time():
    assert index_name("email-events", 1_798_761_600_000) == "email-events-2027.01"
    assert index_name("email-events", 1_798_761_599_999) == "email-events-2026.12"


def test_bulk_body_uses_event_id_as_document_id():
    body = bulk_body("email-events", [event(), event()])
    lines = body.split("\n")
    assert body.endswith("\n") and len(lines) == 5 and lines[-1] == ""
    action, source = json.loads(lines[0]), json.loads(lines[1])
    assert action == {"index": {"_index": "email-events-2027.01", "_id": "e1"}}
    assert source["@timestamp"].startswith("2027-01-01T00:00:00.000")
    assert "occurred_at" not in source


def test_document_fields_all_mapped_and_no_address():
    document = to_document(event())
    mapped = index_template("email-events")["template"]["mappings"]["properties"]
    assert set(document) <= set(mapped)
    assert "recipient" not in document


def test_unknown_status_maps_to_unknown():
    record = event().to_record()
    record["status"] = "teleported"
    assert DeliveryEvent.from_record(record).status is DeliveryStatus.UNKNOWN


def test_an_older_index_gets_only_the_fields_it_lacks():
    """An index an older template made keeps its fields as they are (their parameters cannot
    change) and gets the ones added since."""
    today = index_template("email-events")["template"]["mappings"]["properties"]
    older = {name: {"type": spec["type"]} for name, spec in today.items()
             if name not in ("agent", "url")}
    answer = {"email-events-2026.10": {"mappings": {"properties": older}},
              "email-events-2026.11": {"mappings": {"properties": today}},
              "email-events-2026.12": {"mappings": {}}}
    missing = missing_properties(answer)
    assert missing["email-events-2026.10"] == {"agent": today["agent"], "url": today["url"]}
    assert "email-events-2026.11" not in missing
    assert missing["email-events-2026.12"] == today
    assert missing_properties({}) == {}


def test_identifiers_keep_no_doc_values_and_the_grouped_fields_do():
    mapped = index_template("email-events")["template"]["mappings"]["properties"]
    for name in ("event_id", "command_id", "source_event_id", "recipient_key",
                 "provider_message_id"):
        assert mapped[name]["doc_values"] is False
    for name in ("status", "shop_id", "campaign_id", "variant", "provider", "priority",
                 "idempotency_key", "email_type"):  # reports aggregate these
        assert mapped[name].get("doc_values", True)
    for name in ("source_event_id", "recipient_key", "idempotency_key"):  # queried
        assert mapped[name].get("index", True)
