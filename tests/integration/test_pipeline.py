"""order.placed -> router -> email.transactional -> sender -> SMTP -> outbox, and -> OpenSearch."""

import asyncio
from html import unescape

import requests
from opensearchpy import AsyncOpenSearch

from core.opensearch_client import async_client_options
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from processors.analytics import document_properties, index_name
from processors.keys import delivery_event_id, idempotency_key
from streams.batch_sink import SinkStage
from streams.topics import COMMAND_SUBJECT
from tests.integration.helpers import end_offsets, outbox, poll, read_topic, search

INDEX = "test-email-events-*"


def key_of(event):
    return idempotency_key(event["event_id"], "order_confirmation", event["customer"]["email"])


def publish(settings, events):
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event in events:
            publisher.publish("order.placed", event)


def docs_for(settings, event, status=None):
    filters = [{"term": {"source_event_id": event["event_id"]}}]
    if status:
        filters.append({"term": {"status": status}})
    return search(settings.opensearch_url, INDEX, {"bool": {"filter": filters}})


def test_order_confirmation_end_to_end(worker, settings):
    event = order_placed(1)  # German customer
    event["items"] = [{"sku": "T", "name": "Zelt <Deluxe>", "quantity": 2,
                       "unit_price_minor": 61728}]
    event["subtotal_minor"] = event["total_minor"] = 123456
    publish(settings, [event])
    key = key_of(event)

    [message] = poll(lambda: outbox(settings.outbox_dir).get(key), "the email in the outbox")
    assert message["Subject"] == f"Ihre Bestellung {event['order_id']} bei Nordlicht Outdoor"
    assert message["To"].addresses[0].addr_spec == event["customer"]["email"]
    assert message["Content-Language"] == "de"
    html = message.get_body(("html",)).get_content()
    assert "1.234,56\xa0€" in unescape(html) and "Zelt &lt;Deluxe&gt;" in html
    [pdf] = [part for part in message.iter_attachments()]
    assert pdf.get_filename() == f"order-{event['order_id']}.pdf"
    assert pdf.get_content().startswith(b"%PDF-")
    assert "1.234,56\xa0€" in message.get_body(("plain",)).get_content()

    [doc] = poll(lambda: docs_for(settings, event), "the delivery event in OpenSearch")
    assert doc["_id"] == delivery_event_id(key, "sent", 1)
    source = doc["_source"]
    assert doc["_index"] == index_name("test-email-events", _millis(source["@timestamp"]))
    assert source["status"] == "sent" and source["provider"] == "smtp"
    assert source["priority"] == "transactional" and source["locale"] == "de"
    assert source["latency_ms"] > 0
    assert event["customer"]["email"] not in str(source)  # no personal data in analytics


def test_index_mapping_is_explicit_and_strict(worker, settings):
    mappings = poll(lambda: requests.get(f"{settings.opensearch_url}/{INDEX}/_mapping",
                                         timeout=10).json(), "an analytics index")
    for index in mappings.values():
        assert index["mappings"]["dynamic"] == "strict"
        assert index["mappings"]["properties"]["status"]["type"] == "keyword"



def test_an_index_an_older_template_made_gets_the_new_fields_and_keeps_its_own(worker,
                                                                                settings):
    """The sink, starting on an index made before a field was added or an identifier lost
    its doc values: the new fields are added, the old ones stay as they were (OpenSearch
    refuses to change a mapped field), and the sink starts instead of retrying for ever."""
    url, older_index = settings.opensearch_url, f"{settings.index_prefix}-1999.01"
    today = document_properties()
    older = {name: {"type": spec["type"]} for name, spec in today.items()
             if name not in ("agent", "url")}
    requests.put(f"{url}/{older_index}", json={"mappings": {"dynamic": "strict",
                                                          "properties": older}},
                 timeout=30).raise_for_status()

    async def install() -> None:
        client = AsyncOpenSearch(**async_client_options(settings))
        try:
            stage = SinkStage(client, None, settings.index_prefix, None)  # type: ignore[arg-type]
            await asyncio.wait_for(stage.ensure_template(), 60)
        finally:
            await client.close()

    try:
        asyncio.run(install())
        mapped = requests.get(f"{url}/{older_index}/_mapping", timeout=30).json()[
            older_index]["mappings"]["properties"]
        assert mapped["agent"] == {"type": "keyword"}
        assert mapped["url"] == {"type": "keyword", "ignore_above": 2048}
        assert mapped["event_id"] == {"type": "keyword"}  # as the older template made it
        [template] = requests.get(f"{url}/_index_template/{settings.index_prefix}",
                                  timeout=30).json()["index_templates"]
        properties = template["index_template"]["template"]["mappings"]["properties"]
        assert properties["event_id"] == {"type": "keyword", "index": False,
                                          "doc_values": False}
        assert properties["source_event_id"] == {"type": "keyword", "doc_values": False}
    finally:
        requests.delete(f"{url}/{older_index}", timeout=30)

def test_eight_locales_each_get_their_email(worker, settings):
    events = [order_placed(i) for i in range(8)]
    publish(settings, events)
    keys = {key_of(e): e for e in events}
    found = poll(lambda: (lambda box: box if all(k in box for k in keys) else None)(
        outbox(settings.outbox_dir)), "eight emails")
    languages = {found[k][0]["Content-Language"] for k in keys}
    assert languages == {"en", "de", "fr", "es", "it", "pt-BR", "ja", "zh-Hans"}


def test_same_event_twice_sends_one_email(worker, settings):
    event = order_placed(5)
    since = end_offsets(settings.kafka_bootstrap, "email.transactional")
    publish(settings, [event, event])
    key = key_of(event)
    poll(lambda: docs_for(settings, event, "skipped_duplicate"), "the duplicate to be skipped")
    assert len(outbox(settings.outbox_dir)[key]) == 1
    assert len(docs_for(settings, event, "sent")) == 1
    commands = read_topic(settings.kafka_bootstrap, "email.transactional", since)
    assert sum(1 for c in commands if _source_event(c) == event["event_id"]) == 2


def test_events_waiting_at_worker_start_are_handled_exactly_once(worker, settings):
    """Published before the worker started (see conftest): each one email, no duplicate work."""
    keys = [key_of(e) for e in worker.prestart_events]
    box = poll(lambda: (lambda b: b if all(k in b for k in keys) else None)(
        outbox(settings.outbox_dir)), "every pre-start event's email")
    assert all(len(box[k]) == 1 for k in keys)
    for event in worker.prestart_events:
        statuses = [d["_source"]["status"] for d in poll(
            lambda e=event: docs_for(settings, e), "delivery docs")]
        assert statuses == ["sent"], (event["event_id"], statuses)


def _source_event(record):
    from core.avro import registry
    return registry().decode(COMMAND_SUBJECT, record.value())["source_event_id"]


def _millis(iso):
    import datetime as dt
    return int(dt.datetime.fromisoformat(iso).timestamp() * 1000)
