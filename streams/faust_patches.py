"""Fixes for faust-streaming 0.15.3 (with aiokafka 0.14): two that at-least-once delivery
needs, one that priority latency needs.

1. Paused partitions leak. Faust pauses a partition by leaving it out of the set it passes to
   aiokafka's ``fetched_records(partitions)``, but it passes its *live* set through a thread
   queue; when recovery pauses the changelogs the set becomes empty before the call runs, and
   aiokafka reads an empty set as "every partition". Stream records then arrive while their
   partitions are paused, mid-seek. The fix intersects the request with the partitions that
   are active when the fetch runs and never turns "none" into "all".

2. Resume before seek. ``Recovery.on_recovery_completed`` resumes the stream partitions
   *before* seeking them to their committed offsets, while the flow still runs from changelog
   recovery: records from the old position are delivered, the seek rewinds, and the
   read-offset bookkeeping then drops some records and repeats others. faust-streaming
   PR #217 fixed this order in the table-less path only; this applies it here too.

3. Fetch wait. Faust hard-codes ``fetch_max_wait_ms=1500``. aiokafka keeps one fetch in
   flight per broker, for the partitions with nothing buffered; the broker holds it until one
   of *those* partitions gets data. A password reset landing on a partition outside that
   request waits for it: 100-300 ms per hop under load, up to 1.5 s when idle (measured by
   ``flowmail bench --scenario backlog``). The wait becomes ``FETCH_MAX_WAIT_MS``. Since
   the per-email path left Faust (streams/batch_loop.py), Faust reads only the retry topics
   (commands that wait seconds by design) and the suppression changes' dead letters, so the
   wait is 500 ms: at 50 ms the empty fetches of an idle topic set were 2-4 % of a worker's
   CPU under load (aiokafka parses every fetch answer in Python).

Seen here before the fixes: of 16 events waiting at worker start, some were routed twice and
2 never. ``tests/integration/test_pipeline.py::
test_events_waiting_at_worker_start_are_handled_exactly_once`` guards both. Remove a fix once
upstream ships it.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

_PATCHED = "_flowmail_seek_before_resume"
_original_fetch_records = AIOKafkaConsumerThread._fetch_records
_original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
# An idle worker then sends 2 empty fetches a second.
FETCH_MAX_WAIT_MS = 500


def _create_worker_consumer(self: AIOKafkaConsumerThread, transport: Any) -> Any:
    consumer = _original_create_worker_consumer(self, transport)
    consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the fetcher starts
    return consumer


async def _fetch_records(self: AIOKafkaConsumerThread, consumer: Any, active_partitions: Any,
                         timeout: float | None = None, max_records: int | None = None) -> Any:
    if active_partitions is not None:  # None means client-only mode: every partition
        active_partitions = set(active_partitions) & set(self.consumer._get_active_partitions())
        if not active_partitions:
            return {}
    return await _original_fetch_records(self, consumer, active_partitions, timeout=timeout,
                                         max_records=max_records)


async def _on_recovery_completed(self: Recovery, generation_id: int = 0) -> None:
    consumer = self.app.consumer
    self.log.info("Restore complete!")
    await self.app.on_rebalance_complete.send()
    self._set_recovery_ended()
    callbacks = [asyncio.ensure_future(table.on_recovery_completed(
        self.actives_for_table[table], self.standbys_for_table[table]))
        for table in self.tables.values()]
    if callbacks:
        await asyncio.wait(callbacks)
    assignment = consumer.assignment()
    if self.app.consumer_generation_id != generation_id:
        self.log.warning("Recovery rebalancing again app id %s param %s",
                         self.app.consumer_generation_id, generation_id)
        return
    if assignment:
        self.log.info("Seek stream partitions to committed offsets (before resuming).")
        await self._wait(consumer.perform_seek(), timeout=self.app.conf.broker_request_timeout)
    consumer.resume_partitions({tp for tp in assignment if not self._is_changelog_tp(tp)})
    self.completed.set()
    self.app.flow_control.resume()
    consumer.resume_flow()
    await cast(Any, self.app)._fetcher.maybe_start()
    self.tables.on_actives_ready()
    if not self.app.assignor.assigned_standbys():
        self.tables.on_standbys_ready()
    self.app.on_rebalance_end()
    self.log.info("Worker ready")


def apply() -> None:
    if not getattr(Recovery, _PATCHED, False):
        Recovery.on_recovery_completed = _on_recovery_completed  # type: ignore[method-assign]
        AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
        AIOKafkaConsumerThread._create_worker_consumer = (  # type: ignore[method-assign]
            _create_worker_consumer)
        setattr(Recovery, _PATCHED, True)
