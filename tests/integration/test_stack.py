"""The local stack is real: a Kafka 4.1 JVM, an OpenSearch 2.19 JVM, an SMTP catcher."""

import asyncio
import smtplib
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

import requests
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.helpers import poll


def test_real_jvms_are_running(stack):
    for service, main_class in [(stack.kafka, "kafka.Kafka"),
                                (stack.opensearch, "LocalOpenSearch")]:
        pid = service.proc.pid()
        assert pid is not None
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].endswith(b"/java") and main_class.encode() in cmdline
    assert (stack.kafka.lib / "kafka_2.13-4.1.2.jar").exists()


def test_opensearch_is_2_19_and_healthy(stack):
    assert stack.opensearch.version().startswith("2.19.")
    health = requests.get(f"{stack.opensearch.url}/_cluster/health", timeout=5).json()
    assert health["status"] in {"green", "yellow"}


def test_up_is_safe_to_run_twice(stack):
    """The session's stack runs the Schema Registry too (FLOWMAIL_SCHEMA_REGISTRY_URL)."""
    assert stack.with_registry
    assert stack.up(log=lambda _: None) == {"kafka": False, "opensearch": False,
                                            "mailcatcher": False, "registry": False}


def test_status_command_reports_healthy(stack):
    result = subprocess.run([sys.executable, "-m", "flowmail", "stack", "status"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("healthy") == 4 and "registry" in result.stdout


def _scratch_topic(bootstrap):
    name = f"scratch.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(30)
    return name


def test_confluent_kafka_round_trip(stack):
    """confluent-kafka (librdkafka) with the idempotent producer works against this broker."""
    topic = _scratch_topic(stack.kafka.bootstrap)
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap, "enable.idempotence": True,
                         "acks": "all", "compression.type": "zstd"})
    for i in range(20):
        producer.produce(topic, key=str(i).encode(), value=f"v{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": stack.kafka.bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen = set()

    def all_seen():
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            seen.add(message.value())
        return len(seen) == 20

    poll(all_seen, "20 records through confluent-kafka", timeout_s=60, every_s=0)
    consumer.close()


def test_aiokafka_round_trip_with_consumer_group(stack):
    """aiokafka (Faust's transport) produces, joins a group, consumes and commits here."""
    topic = _scratch_topic(stack.kafka.bootstrap)

    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=stack.kafka.bootstrap,
                                    compression_type="lz4", acks="all")
        await producer.start()
        for i in range(20):
            await producer.send(topic, f"v{i}".encode(), key=str(i).encode())
        await producer.flush()
        await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.kafka.bootstrap,
                                    group_id=topic, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        seen = set()
        try:
            async with asyncio.timeout(60):
                while len(seen) < 20:
                    batch = await consumer.getmany(timeout_ms=1000)
                    seen.update(m.value for records in batch.values() for m in records)
            await consumer.commit()
            committed = [await consumer.committed(tp) for tp in consumer.assignment()]
        finally:
            await consumer.stop()
        return seen, committed

    seen, committed = asyncio.run(scenario())
    assert len(seen) == 20 and sum(committed) == 20


def test_mail_catcher_stores_eml_files(stack, settings):
    marker = uuid.uuid4().hex
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@example.org", "b@example.org", marker
    message.set_content("hello")
    with smtplib.SMTP("127.0.0.1", settings.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)

    def stored():
        return [p for p in settings.outbox_dir.glob("*.eml") if marker in p.read_text()]

    [path] = poll(stored, "the .eml file", timeout_s=10)
    assert path.read_text().startswith("X-Envelope-From: a@example.org")
