"""A fix for faust-streaming 0.15.3 that at-least-once delivery depends on.

``Recovery.on_recovery_completed`` resumes the stream partitions *before* seeking them to
their committed offsets, while the flow is still running from changelog recovery. The
fetcher then delivers records from the old position, the seek rewinds, and Faust's
read-offset bookkeeping drops some records and repeats others: on every worker start with
tables, events waiting in Kafka were processed twice or never (seen here: 16 published,
14 routed, 2 lost). faust-streaming PR #217 fixed the same ordering in the table-less path
only. This applies the same order here: seek first, then resume. Remove it once upstream
orders these calls correctly; ``tests/integration/test_worker_start.py`` shows the symptom.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from faust.tables.recovery import Recovery

_PATCHED = "_flowmail_seek_before_resume"


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
        setattr(Recovery, _PATCHED, True)
