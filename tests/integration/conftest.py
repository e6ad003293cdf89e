"""Session fixtures: the real local stack and one real worker process, started once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.settings import Settings, load_settings
from flowmail.localstack import LocalStack
from flowmail.localstack.procs import stop
from flowmail.publisher import Publisher
from flowmail.samples import order_placed
from streams.groups import start_group_at_end
from streams.topic_admin import TopicAdmin
from streams.topics import topic_specs
from streams.worker import consumed_topics
from tests.alert_receiver import AlertReceiver
from tests.fake_apis import MAILGUN_DOMAIN, MAILGUN_KEY, SENDGRID_KEY, FakeApis
from tests.integration.helpers import free_port, poll, workers_ready

TEST_APP_ID = "flowmail-test"
ALERTS = AlertReceiver()
PRESTART_EVENTS = 12
REGISTRY_PORT = 8081


OPERATOR_ALERTS = "oncall@ops.flowmail.example"
OPERATOR_REPORTS = "reports@ops.flowmail.example"


@pytest.fixture(scope="session")
def settings(fake_apis: FakeApis) -> Settings:
    """The test worker's providers: SendGrid (down unless a test heals it) then SMTP for
    critical and transactional mail; Mailgun alone for marketing. Short breaker and retry
    timings keep the tests quick. Schema ids come from the local Schema Registry."""
    os.environ.update({
        "FLOWMAIL_APP_ID": TEST_APP_ID, "FLOWMAIL_INDEX_PREFIX": "test-email-events",
        "FLOWMAIL_WEB_PORT": str(free_port(span=8)), "FLOWMAIL_SINK_BATCH_SECONDS": "0.2",
        "FLOWMAIL_PROVIDERS_CRITICAL": "sendgrid,smtp",
        "FLOWMAIL_PROVIDERS_TRANSACTIONAL": "sendgrid,smtp",
        "FLOWMAIL_PROVIDERS_MARKETING": "mailgun",
        "FLOWMAIL_SMART_ROUTING": "",  # list order, so failover is deterministic here
        "FLOWMAIL_SENDGRID_API_KEY": SENDGRID_KEY, "FLOWMAIL_SENDGRID_HOST": fake_apis.sendgrid_url,
        "FLOWMAIL_MAILGUN_API_KEY": MAILGUN_KEY, "FLOWMAIL_MAILGUN_DOMAIN": MAILGUN_DOMAIN,
        "FLOWMAIL_MAILGUN_BASE_URL": fake_apis.mailgun_url,
        "FLOWMAIL_BREAKER_FAILURES": "3", "FLOWMAIL_BREAKER_COOLDOWN_S": "1",
        "FLOWMAIL_RETRY_BASE_S": "0.3", "FLOWMAIL_RETRY_CAP_S": "2",
        "FLOWMAIL_PROVIDER_TIMEOUT_S": "2",
        "FLOWMAIL_UNSUBSCRIBE_SECRET": "test-unsubscribe-secret-0123456789abcdef",
        "FLOWMAIL_PSEUDONYM_SECRET": "test-pseudonym-secret-0123456789abcdef",
        # the session's stack runs a Schema Registry and every process resolves ids there
        "FLOWMAIL_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{REGISTRY_PORT}/apis/ccompat/v7",
    })
    os.environ.update({"FLOWMAIL_ALERT_WEBHOOK_URL": f"{ALERTS.url}/hook",
                       "FLOWMAIL_ALERT_SLACK_URL": f"{ALERTS.url}/slack",
                       # operator mail through flowmail: alerts, and yesterday's report at once
                       "FLOWMAIL_ALERT_EMAILS": OPERATOR_ALERTS,
                       "FLOWMAIL_REPORT_EMAILS": OPERATOR_REPORTS,
                       "FLOWMAIL_DAILY_REPORT_AT": "00:00"})
    fake_apis.primary_down()
    return load_settings()


@pytest.fixture(scope="session")
def alert_receiver(settings: Settings) -> AlertReceiver:
    """Where the session worker's anomaly alerts are POSTed (JSON at /hook, Slack at /slack)."""
    return ALERTS


@pytest.fixture(scope="session")
def stack(settings: Settings) -> Iterator[LocalStack]:
    local = LocalStack.from_settings(settings)
    started = local.up()
    TopicAdmin(settings.kafka_bootstrap, settings.replication_factor).apply(topic_specs(settings))
    yield local
    for service in local.services:
        if started[service.proc.name]:
            stop(service.proc)


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Any
    prestart_events: list[dict[str, Any]]


def forget_groups(bootstrap: str, prefix: str, timeout_s: float = 120.0) -> None:
    """Delete an earlier session's groups. A group whose worker was killed (or whose broker
    stopped under it) keeps its members until their session times out: retried until then."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_groups(request_timeout=30).result(timeout=60)
    names = [g.group_id for g in listed.valid
             if g.group_id == prefix or g.group_id.startswith(prefix + "-")]

    def deleted_all() -> bool:
        busy = []
        for name, future in (admin.delete_consumer_groups(names, request_timeout=30).items()
                             if names else []):
            try:
                future.result(timeout=60)
            except KafkaException as exc:
                code = exc.args[0].code()
                if code == KafkaError.NON_EMPTY_GROUP:
                    busy.append(name)
                elif code != KafkaError.GROUP_ID_NOT_FOUND:
                    raise
        names[:] = busy
        return not busy

    poll(deleted_all, "an earlier session's consumer groups emptied and deleted",
         timeout_s=timeout_s, every_s=1.0)


@pytest.fixture(scope="session")
def worker(stack: LocalStack, settings: Settings) -> Iterator[Worker]:
    """One worker for the session; events published before it starts prove a clean start."""
    # A session starts from now: the groups of an earlier session on this broker (and the
    # benchmark's traffic on the same topics since) are dropped; the batch stages' new
    # groups adopt the offsets placed here.
    forget_groups(settings.kafka_bootstrap, TEST_APP_ID)
    start_group_at_end(settings.kafka_bootstrap, TEST_APP_ID, consumed_topics())
    events = [order_placed(i) for i in range(PRESTART_EVENTS)]
    with Publisher(settings.kafka_bootstrap) as publisher:
        for event in events:
            publisher.publish("order.placed", event)
    log_path = settings.home / "logs" / "test-worker.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # closed at teardown
    process = subprocess.Popen([sys.executable, "-m", "flowmail", "worker"], stdout=log,
                               stderr=subprocess.STDOUT, env=dict(os.environ))

    def ready() -> bool:
        assert process.poll() is None, f"worker exited with {process.returncode}; see {log_path}"
        return workers_ready(settings.web_port)

    poll(ready, "the worker to be ready", timeout_s=120)
    running = Worker(process, log_path, events)
    yield running
    running.process.terminate()  # a test may have replaced the process (crash recovery)
    try:
        running.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        running.process.kill()
    log.close()
