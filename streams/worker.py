"""Build a worker with the chosen agents and priorities, then run it under Faust."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Protocol

import faust
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.avro import registry
from core.settings import Settings
from core.vocab import Priority
from processors.routing import ROUTES
from streams import event_loop, memory, metrics
from streams.agents import retry, suppressions
from streams.anomaly import AnomalyDetector
from streams.app import create_app
from streams.batch_router import CriticalRouter
from streams.batch_sender import BatchSender
from streams.batch_sink import BatchSink
from streams.changelog_store import SuppressionView
from streams.dlq import DeadLetters, faust_sender
from streams.domain_router import DomainRouter, router_topics
from streams.groups import earlier_groups
from streams.precedence import Precedence, SharedUrgency, urgency_file
from streams.quarantine import ProviderQuarantine
from streams.sending import provider_chains, provider_quarantine, sender_renderer
from streams.topics import (
    DELIVERY,
    DLQ,
    SUPPRESSIONS,
    faust_topic,
    spec_by_name,
)

AGENTS = ("router", "sender", "sink")


def consumed_topics(agents: Iterable[str] = AGENTS,
                    priorities: Iterable[Priority] = tuple(Priority)) -> list[str]:
    """The topics a worker with these agents reads (its consumer group's offsets)."""
    agents, topics = set(agents), []
    if "router" in agents:
        topics += sorted(set(ROUTES) | set(router_topics()))  # with the critical lane's
    if "sender" in agents:
        topics += [p.topic for p in priorities] + [p.retry_topic for p in priorities]
        topics.append(SUPPRESSIONS)
    if "sink" in agents:
        topics.append(DELIVERY)
    return topics


def build_worker_app(settings: Settings, agents: Iterable[str] = AGENTS,
                     priorities: Iterable[Priority] = tuple(Priority),
                     provider_name: str | None = None, critical_apart: bool = False,
                     pages: Callable[[faust.App], None] | None = None) -> faust.App:
    """Wire only what this worker should run; unknown names fail here, at boot.

    ``pages``: adds the web pages of the layers above (previews, unsubscribe:
    flowmail/worker_pages.py) beside the worker's own /metrics, /health and /ready.

    ``critical_apart``: security mail is routed and sent by the critical lane's own process
    (streams/critical_lane.py); this one keeps everything else, the critical retry topic
    included (a retry re-publishes to the critical topic, which that lane sends)."""
    agents, priorities = set(agents), list(priorities)
    unknown = agents - set(AGENTS)
    if unknown:
        raise ValueError(f"unknown agents {sorted(unknown)}; choose from {', '.join(AGENTS)}")
    app = create_app(settings)
    schemas = registry()
    dead = DeadLetters(faust_sender(faust_topic(app, spec_by_name(settings)[DLQ])),
                       settings.max_payload_bytes)
    # with the critical lane apart, its batches hold this process's senders back too
    precedence = Precedence(SharedUrgency(urgency_file(settings.home, settings.app_id))
                            if critical_apart else None)
    engine: list[BatchStage] = []
    views: list[View] = []
    quarantine: ProviderQuarantine | None = None
    if "router" in agents:
        engine.append(DomainRouter(settings, schemas, precedence))
        if not critical_apart:
            engine.append(CriticalRouter(settings, schemas, precedence))
    if "sender" in agents:
        sent_here = [p for p in priorities if not (critical_apart and p is Priority.CRITICAL)]
        quarantine = provider_quarantine(settings)
        chains, built = provider_chains(settings, sent_here, provider_name, quarantine)
        renderer = sender_renderer(settings)
        view = SuppressionView(settings.kafka_bootstrap, SUPPRESSIONS,
                               suppressions.merge_of(settings), suppressions.parse)
        views += [view] + ([quarantine] if quarantine else [])
        suppressions.register(app, settings, dead)
        for priority in sent_here:
            engine.append(BatchSender(priority, settings, schemas, chains[priority], renderer,
                                      view, precedence))
        for priority in priorities:  # a retry goes back to its priority's topic, sent anywhere
            retry.register(app, settings, schemas, dead, priority)

        @app.timer(5.0)
        async def report_breakers() -> None:
            for name, guarded in built.items():
                metrics.BREAKER_OPEN.labels(name.partition("/")[0]).set(
                    0 if guarded.breaker.state == "closed" else 1)

        @app.on_before_shutdown.connect
        async def close_providers(app: faust.App, **kwargs: object) -> None:
            for guarded in built.values():
                await guarded.provider.close()
    if "sink" in agents:
        engine.append(BatchSink(settings, schemas, f"{settings.app_id}-sink",
                                adopt_from=earlier_groups(settings.app_id),
                                precedence=precedence))
        engine.append(AnomalyDetector(settings))  # active in one process: one partition
    if engine:
        run_engine(app, settings, engine, views)

    app.task(metrics.measure_loop_lag)
    app.task(memory.trim_forever)

    @app.page("/metrics")
    async def metrics_page(web_view: faust.web.View, request: faust.web.Request) -> web.Response:
        # aiohttp refuses a charset inside content_type; the exposition format is ASCII
        return web_view.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health_page(web_view: faust.web.View, request: faust.web.Request) -> web.Response:
        # stream buffers that filled up: a full one stalls every partition's delivery
        full = {f"{tp.topic}:{tp.partition}": n
                for tp, n in app.monitor.topic_buffer_full.items()} if app.monitor else {}
        return web_view.json({"status": "ok", "agents": sorted(agents),
                              "priorities": [p.value for p in priorities],
                              "stream_buffers_full": full,
                              "providers_out": sorted(quarantine.names()) if quarantine else []})

    if pages is not None:
        pages(app)

    @app.page("/ready")
    async def ready_page(web_view: faust.web.View, request: faust.web.Request) -> web.Response:
        """Ready once partitions are assigned and tables recovered (a readiness probe)."""
        recovered = app.tables.recovery.completed.is_set()
        ready = (recovered and not app.rebalancing and bool(app.consumer.assignment())
                 and all(stage.ready for stage in engine))
        return web_view.json({"ready": ready}, status=200 if ready else 503)

    return app


class BatchStage(Protocol):
    ready: bool

    async def run(self) -> None: ...

    def stop(self) -> None: ...


class View(Protocol):
    """State read from a topic before the senders start, followed after."""

    def start(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


def run_engine(app: faust.App, settings: Settings, engine: list[BatchStage],
               views: list[View]) -> None:
    """The batch senders run beside Faust's agents, on the same event loop; one that fails
    crashes the worker (its supervisor restarts it) instead of leaving a silent lane."""

    stopped = asyncio.Event()

    @app.task
    async def batch_senders() -> None:
        loop = asyncio.get_running_loop()
        try:
            for view in views:
                await loop.run_in_executor(None, view.start, settings.startup_timeout_s)
            await asyncio.gather(*(s.run() for s in engine))
        except asyncio.CancelledError:
            raise
        except BaseException as err:
            logging.getLogger(__name__).exception("batch sender failed")
            await app.crash(err)
        finally:
            for view in views:
                view.close()
            stopped.set()

    @app.on_before_shutdown.connect
    async def stop_senders(app: faust.App, **kwargs: object) -> None:
        """Let each sender finish its batch and commit (a batch is seconds at most)."""
        for stage in engine:
            stage.stop()
        try:
            await asyncio.wait_for(stopped.wait(), 30.0)
        except TimeoutError:
            logging.getLogger(__name__).warning("batch senders still busy at shutdown")


def run(settings: Settings, agents: Iterable[str], priorities: Iterable[Priority],
        provider_name: str | None, loglevel: str = "info", critical_apart: bool = False,
        pages: Callable[[faust.App], None] | None = None) -> None:
    event_loop.install(settings.event_loop)
    app = build_worker_app(settings, agents, priorities, provider_name, critical_apart, pages)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    # Faust keeps a terminal spinner at WARNING and above, and for it sets the root logger to
    # DEBUG: every aiokafka debug record is then built, a tenth of the worker's CPU.
    worker.spinner = None
    worker.execute_from_commandline()
