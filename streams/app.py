"""The Faust app and its settings; nothing else lives here."""

from __future__ import annotations

import faust

from flowmail.settings import Settings
from streams import faust_patches


def create_app(settings: Settings) -> faust.App:
    faust_patches.apply()
    (settings.home / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes one level only
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
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
    )
