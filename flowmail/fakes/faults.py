"""Fault injection shared by the fake APIs, driven over HTTP so tests and benchmarks can
switch a running server: POST /_fake/faults {"status": 500, "count": 3, "retry_after": 2,
"delay_s": 0}; count -1 means until reset; delay_s > timeout simulates a timeout."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class FaultPlan:
    status: int = 0
    count: int = 0
    retry_after: float | None = None
    delay_s: float = 0.0


@dataclass
class FakeState:
    faults: FaultPlan = field(default_factory=FaultPlan)
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    resets: int = 0  # how many times ``accepted`` was emptied: a reader's offsets are void

    def accept(self, record: dict[str, Any]) -> None:
        """Keep an accepted recipient's message, stamped with the moment it was accepted."""
        record["at"] = time.time()
        self.accepted.append(record)

    async def maybe_fail(self) -> web.Response | None:
        plan = self.faults
        if plan.delay_s:
            await asyncio.sleep(plan.delay_s)
        if plan.status and plan.count != 0:
            if plan.count > 0:
                plan.count -= 1
            self.refused += 1
            headers = {"Retry-After": str(plan.retry_after)} if plan.retry_after else {}
            return web.json_response({"errors": [{"message": f"injected {plan.status}"}]},
                                     status=plan.status, headers=headers)
        return None


def control_routes(state: FakeState) -> list[web.RouteDef]:
    async def set_faults(request: web.Request) -> web.Response:
        body = await request.json()
        state.faults = FaultPlan(int(body.get("status", 0)), int(body.get("count", -1)),
                                 body.get("retry_after"), float(body.get("delay_s", 0)))
        return web.json_response({"ok": True})

    async def messages(_: web.Request) -> web.Response:
        return web.json_response({"accepted": state.accepted, "refused": state.refused})

    async def receipts(request: web.Request) -> web.Response:
        """(idempotency key, accepted at, email type) per recipient: what the benchmark
        counts. ``?since=N``: from the N-th on (a poller keeps what it read: the whole list
        four times a second cost this server a third of a core during a 200,000-recipient
        run, docs/performance.md); ``resets`` tells it when its count is void."""
        try:
            since = max(0, int(request.query.get("since", "0")))
        except ValueError:
            return web.json_response({"errors": [{"message": "since: a whole number"}]},
                                     status=400)
        return web.json_response({"resets": state.resets, "total": len(state.accepted),
                                  "receipts": [
            [m["headers"].get("X-Flowmail-Idempotency-Key"), m["at"],
             m["headers"].get("X-Flowmail-Email-Type")] for m in state.accepted[since:]]})

    async def reset(_: web.Request) -> web.Response:
        state.faults, state.accepted, state.refused = FaultPlan(), [], 0
        state.resets += 1
        return web.json_response({"ok": True})

    return [web.post("/_fake/faults", set_faults), web.get("/_fake/messages", messages),
            web.get("/_fake/receipts", receipts),
            web.post("/_fake/reset", reset)]
