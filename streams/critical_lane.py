"""The critical lane: security mail routed and sent by a process of its own.

Measured in the backlog scenario (20,000 marketing emails draining, then 200 password resets)
with every stage in each of two full processes: a password reset waited 320 ms (p50) for its
command to be written and 570 ms more to be sent, on event loops busy with the campaign,
although critical batches took precedence on them. Here the critical router
(streams/batch_router.py) and the critical sender (streams/batch_sender.py) run on an event
loop that nothing else uses, without Faust (no agent of theirs needs it), and the supervisor
runs the other processes at a lower CPU priority (flowmail/supervisor.py). The critical retry
topic stays with the full workers' Faust retry agents: a retry re-publishes to the critical
topic, which this lane sends.

Web: /ready, /health and /metrics, as every worker process serves them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.avro import registry
from core.settings import Settings
from core.vocab import Priority
from streams import event_loop, memory, metrics
from streams.agents import suppressions
from streams.batch_loop import LoopStage
from streams.batch_router import CriticalRouter
from streams.batch_sender import BatchSender
from streams.changelog_store import SuppressionView
from streams.precedence import Precedence, SharedUrgency, urgency_file
from streams.sending import provider_chains, provider_quarantine, sender_renderer
from streams.topics import SUPPRESSIONS

log = logging.getLogger(__name__)

PRIORITY = Priority.CRITICAL
STOP_TIMEOUT_S = 30.0  # a batch is seconds at most


class CriticalLane:
    def __init__(self, settings: Settings, provider_name: str | None = None) -> None:
        # as many connections as emails in flight: none waits for another's round trip
        settings = replace(settings, smtp_pool_size=max(settings.smtp_pool_size,
                                                        settings.sender_concurrency))
        self.settings = settings
        schemas = registry()
        # nothing else on this loop to give way; the worker processes give way
        precedence = Precedence(SharedUrgency(urgency_file(settings.home, settings.app_id)))
        self.quarantine = provider_quarantine(settings)
        chains, self.built = provider_chains(settings, [PRIORITY], provider_name,
                                             self.quarantine)
        self.view = SuppressionView(settings.kafka_bootstrap, SUPPRESSIONS,
                                    suppressions.merge_of(settings), suppressions.parse)
        self.stages: list[LoopStage] = [
            CriticalRouter(settings, schemas, precedence),
            BatchSender(PRIORITY, settings, schemas, chains[PRIORITY],
                        sender_renderer(settings), self.view, precedence)]
        self.view_started = False

    @property
    def ready(self) -> bool:
        return self.view_started and all(stage.ready for stage in self.stages)

    def stop(self) -> None:
        for stage in self.stages:
            stage.stop()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self.view.start, self.settings.startup_timeout_s)
            if self.quarantine is not None:
                await loop.run_in_executor(None, self.quarantine.start,
                                           self.settings.startup_timeout_s)
            self.view_started = True
            await asyncio.gather(*(stage.run() for stage in self.stages))
        finally:
            self.view.close()
            if self.quarantine is not None:
                self.quarantine.close()
            for guarded in self.built.values():
                await guarded.provider.close()

    def web_app(self) -> web.Application:
        async def ready(_request: web.Request) -> web.Response:
            return web.json_response({"ready": self.ready}, status=200 if self.ready else 503)

        async def health(_request: web.Request) -> web.Response:
            return web.json_response({"status": "ok", "lane": "critical",
                                      "agents": ["router", "sender"],
                                      "priorities": [PRIORITY.value],
                                      "stream_buffers_full": {},
                                      "providers_out": sorted(self.quarantine.names())
                                      if self.quarantine else []})

        async def metrics_page(_request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(),
                                content_type=CONTENT_TYPE_LATEST.split(";")[0])

        app = web.Application()
        app.router.add_get("/ready", ready)
        app.router.add_get("/health", health)
        app.router.add_get("/metrics", metrics_page)
        return app


async def serve(settings: Settings, provider_name: str | None) -> None:
    lane = CriticalLane(settings, provider_name)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lane.stop)
    runner = web.AppRunner(lane.web_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    lag = asyncio.create_task(metrics.measure_loop_lag())
    trimming = asyncio.create_task(memory.trim_forever())
    running = asyncio.create_task(lane.run())
    try:
        await running  # ends when stopped (each stage finishes its batch and commits)
    finally:
        lag.cancel()
        trimming.cancel()
        await runner.cleanup()


def run(settings: Settings, provider_name: str | None, loglevel: str = "info") -> None:
    logging.basicConfig(level=loglevel.upper(),
                        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    event_loop.install(settings.event_loop)
    asyncio.run(serve(settings, provider_name))
