"""The Faust app and its settings; nothing else lives here."""

from __future__ import annotations

import faust

from core.kafka_security import security_of
from core.settings import Settings
from streams import faust_patches

STREAM_BUFFER = 65536  # records per agent buffer; ~2 KB each at most in flight


def create_app(settings: Settings) -> faust.App:
    faust_patches.apply()
    (settings.home / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=security_of(settings).faust_credentials(),
        store="memory://",
        autodiscover=False,
        datadir=str(settings.home / "faust" / "{conf.id}"),
        topic_replication_factor=settings.replication_factor,
        topic_partitions=settings.partitions_email,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        table_standby_replicas=0,
        # Faust hands every fetched record to its agent's buffer in one loop: a full buffer
        # (thousands of order events waiting for the router) blocked the delivery of the
        # password resets behind them to their own agent (critical p99 5-6 s in the mix).
        stream_buffer_maxsize=STREAM_BUFFER,
    )
