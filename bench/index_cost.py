"""OpenSearch's CPU to index delivery events, with today's mapping against every field
indexed with doc values (the mapping before the thirteenth session).

    .venv/bin/python -m bench.index_cost [--n 20000] [--repeat 4] [--json out.json]

Needs a running node (``flowmail stack up``); reads its CPU from /proc by the pid the node
reports. Each pass indexes ``n`` documents into a fresh index in bulk requests of 500 (the
sink's batches), waits until a search sees them all, then force-merges to one segment (what
a long run's merges do) and reads the CPU again. The variants take turns; the first pass of
each warms the JVM and is left out of the medians.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
import uuid
from typing import Any

import requests

from bench.report import emit
from core.settings import load_settings
from core.vocab import DeliveryStatus
from processors.analytics import bulk_body, index_template
from processors.commands import DeliveryEvent
from processors.keys import delivery_event_id, idempotency_key, recipient_key

PREFIX = "bench-index-cost"
BATCH = 500


def _events(n: int) -> list[DeliveryEvent]:
    now = int(time.time() * 1000)
    events = []
    for i in range(n):
        address = f"p{i}@example.org"
        key = idempotency_key(f"event-{i}", "marketing_campaign", address)
        events.append(DeliveryEvent(
            event_id=delivery_event_id(key, "sent", 1),
            status=DeliveryStatus.SENT, idempotency_key=key, command_id=str(uuid.uuid4()),
            email_type=("marketing_campaign", "order_confirmation", "shipping_update")[i % 3],
            priority="marketing", locale="de", shop_id=f"shop-{i % 5:03d}",
            recipient_key=recipient_key(address, b"bench-index-cost"),
            recipient_domain="example.org", attempt=1, source_event_id=str(uuid.uuid4()),
            occurred_at=now, provider="smtp", provider_message_id=f"<{key}@flowmail>",
            latency_ms=float(i % 5000), campaign_id="c-1", variant="A", agent="worker"))
    return events


def _all_with_doc_values(template: dict[str, Any]) -> dict[str, Any]:
    older = copy.deepcopy(template)
    for spec in older["template"]["mappings"]["properties"].values():
        spec.pop("doc_values", None)
        spec.pop("index", None)
    return older


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_pass(url: str, pid: int, template: dict[str, Any], events: list[DeliveryEvent]
             ) -> float:
    session = requests.Session()
    session.delete(f"{url}/{PREFIX}-*", timeout=60)
    session.put(f"{url}/_index_template/{PREFIX}", json=template, timeout=60).raise_for_status()
    bodies = [bulk_body(PREFIX, events[at:at + BATCH]) for at in range(0, len(events), BATCH)]
    began = _cpu_s(pid)
    for body in bodies:
        answer = session.post(f"{url}/_bulk", data=body.encode(), timeout=120,
                              headers={"Content-Type": "application/x-ndjson"})
        answer.raise_for_status()
        if answer.json()["errors"]:
            raise RuntimeError("a document was refused")
    deadline = time.monotonic() + 120
    while session.get(f"{url}/{PREFIX}-*/_count", timeout=60).json()["count"] < len(events):
        if time.monotonic() > deadline:
            raise RuntimeError("documents not searchable within 120 s")
        time.sleep(0.1)
    session.post(f"{url}/{PREFIX}-*/_forcemerge?max_num_segments=1", timeout=300)
    return _cpu_s(pid) - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    url = load_settings().opensearch_url
    nodes = requests.get(f"{url}/_nodes/_local/process", timeout=30).json()["nodes"]
    pid = next(iter(nodes.values()))["process"]["id"]
    today = index_template(PREFIX)
    variants = {"today": today, "every field with doc values": _all_with_doc_values(today)}
    events = _events(args.n)
    passes: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for _ in range(args.repeat):
            for name, template in variants.items():
                passes[name].append(round(one_pass(url, pid, template, events), 2))
    finally:
        requests.delete(f"{url}/{PREFIX}-*", timeout=60)
        requests.delete(f"{url}/_index_template/{PREFIX}", timeout=60)
    emit({"documents": args.n, "opensearch_cpu_s": passes,
          "median_after_the_first": {name: statistics.median(values[1:] or values)
                                     for name, values in passes.items()}}, args.json)


if __name__ == "__main__":
    main()
