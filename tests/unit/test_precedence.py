"""Critical batches hold back the other senders, in one process and across processes."""

import asyncio
import time

from streams import precedence
from streams.precedence import Precedence, SharedUrgency


def test_a_lease_held_in_one_process_is_seen_through_the_file(tmp_path):
    writer, reader = SharedUrgency(tmp_path / "w.urgent"), SharedUrgency(tmp_path / "w.urgent")
    assert not reader.urgent()
    writer.hold()
    assert reader.urgent()
    writer.release()
    assert not reader.urgent()


def test_a_lease_left_behind_by_a_dead_lane_expires(tmp_path, monkeypatch):
    monkeypatch.setattr(precedence, "LEASE_S", 0.05)
    lease = SharedUrgency(tmp_path / "w.urgent")
    lease.hold()  # and never released
    deadline = time.monotonic() + 5
    while lease.urgent():
        assert time.monotonic() < deadline
    assert not lease.urgent()


async def test_other_senders_wait_while_the_lane_handles_a_batch(tmp_path):
    lane = Precedence(SharedUrgency(tmp_path / "w.urgent"))
    worker = Precedence(SharedUrgency(tmp_path / "w.urgent"))
    order: list[str] = []

    async def marketing() -> None:
        await worker.wait_turn()
        order.append("marketing")

    with lane.urgent():
        waiting = asyncio.create_task(marketing())
        await asyncio.sleep(0.02)
        order.append("critical")
    await asyncio.wait_for(waiting, 5)
    assert order == ["critical", "marketing"]


async def test_one_task_per_process_watches_the_lease_however_many_senders_wait(tmp_path):
    """Sixty-four senders waiting do not each poll the lease every 2 ms."""
    lease = SharedUrgency(tmp_path / "w.urgent")
    looks = 0
    urgent = lease.urgent

    def counted() -> bool:
        nonlocal looks
        looks += 1
        return urgent()

    lease.urgent = counted  # type: ignore[method-assign]
    lane = Precedence(SharedUrgency(tmp_path / "w.urgent"))
    worker = Precedence(lease)
    with lane.urgent():
        waiting = [asyncio.create_task(worker.wait_turn()) for _ in range(64)]
        await asyncio.sleep(0.1)  # about 50 looks by the one watcher
        assert not any(task.done() for task in waiting)
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert looks < 64 + 200, looks


async def test_the_router_gives_way_while_the_lane_handles_a_batch(tmp_path):
    """The router's fan-outs fill the broker the lane needs: it waits as the senders do."""
    from core.avro import registry
    from core.settings import Settings
    from streams.domain_router import DomainRouter

    lane = Precedence(SharedUrgency(tmp_path / "w.urgent"))
    router = DomainRouter(Settings(home=tmp_path), registry(),
                          Precedence(SharedUrgency(tmp_path / "w.urgent")))
    try:
        with lane.urgent():
            handled = asyncio.create_task(router.handle([]))
            await asyncio.sleep(0.05)
            assert not handled.done()
        await asyncio.wait_for(handled, 5)
    finally:
        await router.close()
