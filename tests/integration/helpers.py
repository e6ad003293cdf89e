"""Helpers for tests against the real local stack: polling, raw Kafka I/O, outbox, OpenSearch."""

from __future__ import annotations

import email
import email.policy
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import requests
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from core.kafka_config import producer_config
from core.settings import load_settings
from flowmail.supervisor import layout, process_count

T = TypeVar("T")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(pair: bool = False, span: int | None = None) -> int:
    """A free port (with ``pair``: P to P+3 free, Kafka's broker, controller, SASL_SSL and
    mutual-TLS listeners; ``span``: that many in a row). Taken below the kernel's ephemeral
    range: a service restarted by a test (a killed worker, a killed broker) must find its port
    again, and any outgoing connection may hold an ephemeral one meanwhile."""
    span = span or (4 if pair else 1)
    low = _ephemeral_low()
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, max(20001, low - span))
        if all(_free(port + step) for step in range(span)):
            return port
    raise AssertionError("no free ports")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def worker_ports(settings: Any) -> list[int]:
    """The web port of every process `flowmail worker` starts with these settings."""
    return [child.web_port for child in layout(settings, process_count(settings))]


def workers_ready(web_port: int, processes: int | None = None) -> bool:
    """Every process `flowmail worker` started answers /ready: ``processes`` from
    ``web_port`` on, or by default the supervisor's layout (flowmail/supervisor.py: one
    worker process per core and the critical lane)."""
    if processes is None:
        settings = replace(load_settings(), web_port=web_port)
        ports = [child.web_port for child in layout(settings, process_count(settings))]
    else:
        ports = [web_port + index for index in range(processes)]
    for port in ports:
        try:
            if not requests.get(f"http://127.0.0.1:{port}/ready", timeout=2).ok:
                return False
        except requests.RequestException:
            return False
    return True


def poll(check: Callable[[], T], what: str, timeout_s: float = 60.0, every_s: float = 0.25) -> T:
    """Return the first truthy ``check()``; fail with ``what`` at the deadline (no bare sleeps)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)


def produce_raw(bootstrap: str, topic: str, value: bytes, key: bytes | None = None,
                headers: list[tuple[str, bytes]] | None = None) -> tuple[int, int]:
    """Produce one record and return its (partition, offset)."""
    delivered: list[Any] = []
    producer = Producer(producer_config(bootstrap))
    producer.produce(topic, value=value, key=key, headers=headers,
                     on_delivery=lambda err, msg: delivered.append((err, msg)))
    producer.flush(30)
    [(err, msg)] = delivered
    assert err is None, err
    return msg.partition(), msg.offset()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "flowmail-tests-probe"})

    def read() -> dict[int, int] | None:
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in partitions}
        except KafkaException as err:  # a partition whose leader is still being elected
            if err.args[0].retriable() or err.args[0].code() == KafkaError.NOT_LEADER_FOR_PARTITION:
                return None
            raise

    try:
        return poll(read, f"end offsets of {topic}", timeout_s=30)
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, since: dict[int, int]) -> list[Any]:
    """Every record written after ``since`` (per-partition offsets) up to the current end."""
    ends = end_offsets(bootstrap, topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "flowmail-tests-reader",
                         "enable.auto.commit": False})
    wanted = {p: end for p, end in ends.items() if end > since.get(p, 0)}
    if not wanted:
        consumer.close()
        return []
    consumer.assign([TopicPartition(topic, p, since.get(p, 0)) for p in wanted])
    records, done = [], set()
    deadline = time.monotonic() + 30
    while len(done) < len(wanted) and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        records.append(message)
        if message.offset() + 1 >= wanted[message.partition()]:
            done.add(message.partition())
    consumer.close()
    return records


_KEY = re.compile(rb"X-Flowmail-Idempotency-Key:\s*([0-9a-f]{40})")
_index: dict[str, str | None] = {}  # file path -> idempotency key, each file read once


def outbox(outbox_dir: Path) -> dict[str, list[EmailMessage]]:
    """Idempotency key -> every message in the outbox carrying it (parsed on demand)."""
    found: dict[str, list[EmailMessage]] = {}
    for path in sorted(outbox_dir.glob("*.eml")):
        name = str(path)
        if name not in _index:
            match = _KEY.search(path.read_bytes()[:8192])
            _index[name] = match.group(1).decode() if match else None
        key = _index[name]
        if key:
            found.setdefault(key, []).append(_LazyMessage(path))  # type: ignore[arg-type]
    return found


class _LazyMessage:
    """Parses the .eml the first time a test looks inside it."""

    def __init__(self, path: Path) -> None:
        self._path, self._message = path, None

    def __getattr__(self, name: str) -> Any:
        if self._message is None:
            self._message = email.message_from_bytes(self._path.read_bytes(),
                                                     policy=email.policy.default)
        return getattr(self._message, name)

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__("__getitem__")(name)


def search(opensearch_url: str, index: str, query: dict[str, Any], size: int = 100
           ) -> list[dict[str, Any]]:
    requests.post(f"{opensearch_url}/{index}/_refresh", timeout=10)
    answer = requests.post(f"{opensearch_url}/{index}/_search",
                           json={"query": query, "size": size}, timeout=10)
    if answer.status_code == 404:
        return []
    answer.raise_for_status()
    return answer.json()["hits"]["hits"]


def headers_of(message: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in (message.headers() or [])}


def dead_letters_from(bootstrap: str, since: dict[int, int], sources: tuple[str, ...],
                      at_least: int) -> list[dict[str, str]]:
    """The headers of the dead letters of ``sources`` written after ``since``, once there are
    ``at_least`` of them."""

    def letters() -> list[dict[str, str]] | None:
        found = [headers_of(r) for r in read_topic(bootstrap, "email.dlq", since)]
        found = [h for h in found if h["flowmail.source_topic"] in sources]
        return found if len(found) >= at_least else None

    return poll(letters, f"{at_least} dead letters from {', '.join(sources)}")
