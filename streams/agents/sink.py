"""email.delivery -> OpenSearch, in bulk batches, document id = delivery event id."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from opensearchpy import AsyncOpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError
from opensearchpy.helpers import async_bulk

from flowmail.avro import SchemaRegistry
from flowmail.settings import Settings
from processors.analytics import bulk_actions, index_template
from processors.commands import DeliveryEvent
from streams import metrics
from streams.dlq import DeadLetters
from streams.topics import DELIVERY, faust_topic, spec_by_name

if TYPE_CHECKING:
    import faust
    from faust.types import EventT

log = logging.getLogger(__name__)


class SinkStage:
    """Index a batch; retry the whole batch while OpenSearch is unreachable (backpressure)."""

    def __init__(self, client: AsyncOpenSearch, registry: SchemaRegistry, prefix: str,
                 dead: DeadLetters) -> None:
        self.client, self.registry, self.prefix, self.dead = client, registry, prefix, dead
        self.template_installed = False

    async def ensure_template(self) -> None:
        """Before the first document, so no index is ever created with guessed mappings."""
        delay = 0.5
        while not self.template_installed:
            try:
                await self.client.indices.put_index_template(name=self.prefix,
                                                             body=index_template(self.prefix))
                self.template_installed = True
            except (TimeoutError, OSConnectionError, TransportError) as err:
                log.warning("index template not installed (%s); retrying in %.1fs",
                            type(err).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def handle(self, batch: list[EventT]) -> None:
        decoded: list[tuple[EventT, DeliveryEvent]] = []
        for event in batch:
            try:
                record = self.registry.decode(f"{DELIVERY}-value", event.message.value)
                decoded.append((event, DeliveryEvent.from_record(record)))
            except Exception as err:  # noqa: BLE001 - the dead-letter policy decides
                await self.dead.reject(event.message, err, stage="sink")
        if not decoded:
            return
        await self.ensure_template()
        actions = bulk_actions(self.prefix, [d for _, d in decoded])
        errors = await self._bulk_until_reachable(actions)
        by_id = {d.event_id: e for e, d in decoded}
        for error in errors:
            item = next(iter(error.values()))
            event = by_id.get(item.get("_id"))
            if event is not None:
                await self.dead.reject(event.message, ValueError(
                    f"opensearch refused document: {str(item.get('error'))[:300]}"), stage="sink")
        metrics.INDEXED.inc(len(actions) - len(errors))

    async def _bulk_until_reachable(self, actions: list[dict]) -> list[dict]:
        delay = 0.5
        while True:
            try:
                _, errors = await async_bulk(self.client, actions, raise_on_error=False,
                                             raise_on_exception=True, max_retries=3)
                return list(errors)
            except (TimeoutError, OSConnectionError, TransportError) as err:
                log.warning("opensearch bulk failed (%s); retrying in %.1fs", type(err).__name__,
                            delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)


def register(app: faust.App, settings: Settings, registry: SchemaRegistry,
             dead: DeadLetters) -> None:
    client = AsyncOpenSearch(hosts=[settings.opensearch_url], timeout=30)
    stage = SinkStage(client, registry, settings.index_prefix, dead)
    spec = spec_by_name(settings)[DELIVERY]

    @app.on_before_shutdown.connect
    async def close_client(app: faust.App, **kwargs: object) -> None:
        await client.close()

    @app.agent(faust_topic(app, spec), name="delivery_sink")
    async def sink(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.sink_batch_size,
                                              within=settings.sink_batch_seconds):
            await stage.handle(batch)
