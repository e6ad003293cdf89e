"""email.delivery -> OpenSearch, in bulk batches, document id = delivery event id.

On the batch loop (streams/batch_loop.py): a batch of up to FLOWMAIL_SINK_BATCH_SIZE events
is one bulk request; offsets are committed once OpenSearch has the batch (or the dead-letter
topic has what it refused)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError

from core.avro import SchemaRegistry
from core.opensearch_client import async_client_options
from core.settings import Settings
from processors.analytics import bulk_body, index_template, missing_properties
from processors.anomaly import count
from processors.commands import DeliveryEvent
from streams import metrics
from streams.anomaly import rules_of
from streams.batch_io import BatchProducer, dead_letter_sender
from streams.batch_loop import BatchLoop, LoopStage
from streams.dlq import DeadLetters
from streams.precedence import Precedence
from streams.serde import Serde, serde
from streams.topics import ANOMALY_COUNTS, DELIVERY

if TYPE_CHECKING:
    from streams.batch_io import SourceRecord

log = logging.getLogger(__name__)


class SinkStage:
    """Index a batch; retry the whole batch while OpenSearch is unreachable (backpressure)."""

    def __init__(self, client: AsyncOpenSearch, deliveries: Serde, prefix: str,
                 dead: DeadLetters) -> None:
        self.client, self.deliveries, self.prefix, self.dead = client, deliveries, prefix, dead
        self.template_installed = False

    async def ensure_template(self) -> None:
        """Before the first document, so no index is ever created with guessed mappings."""
        delay = 0.5
        while not self.template_installed:
            try:
                await self.client.indices.put_index_template(name=self.prefix,
                                                             body=index_template(self.prefix))
                # indices made by an older template get the fields added since (adding a
                # field to a mapping is allowed; changing one is not, and is never done)
                mappings = await self.client.indices.get_mapping(
                    index=f"{self.prefix}-*", params={"allow_no_indices": "true"})
                for index, lacking in missing_properties(mappings).items():
                    await self.client.indices.put_mapping(index=index,
                                                          body={"properties": lacking})
                self.template_installed = True
            except (TimeoutError, OSConnectionError, TransportError) as err:
                log.warning("index template not installed (%s); retrying in %.1fs",
                            type(err).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def handle(self, batch: list[SourceRecord]) -> list[DeliveryEvent]:
        """The events indexed (the anomaly rules count them)."""
        decoded: list[tuple[SourceRecord, DeliveryEvent]] = []
        for record in batch:
            event = await self.dead.attempt(record, "sink", lambda r=record: (
                DeliveryEvent.from_record(self.deliveries.decode(r.value, millis=True))))
            if event is not None:
                decoded.append((record, event))
        if not decoded:
            return []
        await self.ensure_template()
        events = [event for _, event in decoded]
        refused = await self._bulk_until_reachable(bulk_body(self.prefix, events), len(events))
        by_id = {event.event_id: record for record, event in decoded}
        for event_id, error in refused:
            record = by_id.get(event_id)
            if record is not None:
                await self.dead.reject(record, ValueError(
                    f"opensearch refused document: {str(error)[:300]}"), stage="sink")
        metrics.INDEXED.inc(len(events) - len(refused))
        return events

    async def _bulk_until_reachable(self, body: str, count: int) -> list[tuple[str, Any]]:
        """(event id, error) of the documents OpenSearch refused for good. Documents it
        refused for now (429: its queue is full) are sent again, and so is everything while
        it is unreachable: the batch is not committed before."""
        delay, refused = 0.5, []
        while True:
            try:
                answer = await self.client.bulk(
                    body=body, filter_path="errors,items.*.error,items.*._id,items.*.status")
            except (TimeoutError, OSConnectionError, TransportError) as err:
                log.warning("opensearch bulk failed (%s); retrying in %.1fs", type(err).__name__,
                            delay)
            else:
                if not answer.get("errors"):
                    return refused
                lines, again = body.split("\n"), []
                for index, entry in enumerate(answer.get("items", [])):
                    item = next(iter(entry.values()))
                    if "error" not in item:
                        continue
                    if item.get("status") == 429:
                        again += lines[2 * index:2 * index + 2]
                    else:
                        refused.append((item.get("_id", ""), item["error"]))
                if not again:
                    return refused
                log.warning("opensearch throttled %d of %d document(s); retrying in %.1fs",
                            len(again) // 2, count, delay)
                body = "\n".join(again) + "\n"
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


class BatchSink(LoopStage):
    """The sink stage on its own consumer group (``<worker id>-sink``)."""

    def __init__(self, settings: Settings, registry: SchemaRegistry, group: str,
                 adopt_from: list[str], precedence: Precedence | None = None) -> None:
        self.precedence = precedence or Precedence()
        self.client = AsyncOpenSearch(**async_client_options(settings), timeout=30)
        self._dlq_producer = BatchProducer(settings.kafka_bootstrap, **{"linger.ms": 0})
        self._counts = BatchProducer(settings.kafka_bootstrap)
        self.rules = rules_of(settings)
        dead = DeadLetters(dead_letter_sender(self._dlq_producer), settings.max_payload_bytes)
        self.stage = SinkStage(self.client, serde(settings, registry, DELIVERY),
                               settings.index_prefix, dead)
        self.loops = [BatchLoop(settings.kafka_bootstrap, group, [DELIVERY], self.handle,
                                take_max=settings.sink_batch_size,
                                fill_wait_s=settings.sink_batch_seconds, adopt_from=adopt_from,
                                startup_timeout_s=settings.startup_timeout_s)]

    async def handle(self, batch: list[SourceRecord]) -> None:
        """Analytics wait while security mail is sent (OpenSearch's indexing is the busiest
        process beside the senders)."""
        await self.precedence.wait_turn()
        events = await self.stage.handle(batch)
        partial = count(events, self.rules)
        if partial:  # one record a batch, read by the anomaly detector (streams/anomaly.py)
            self._counts.produce(ANOMALY_COUNTS, None, json.dumps(partial).encode())
            await self._counts.flush()

    async def prepare(self) -> None:
        await self.stage.ensure_template()

    async def close(self) -> None:
        self._dlq_producer.close()
        self._counts.close()
        await self.client.close()
