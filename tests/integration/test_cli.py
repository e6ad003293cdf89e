"""The flowmail CLI as users run it: publish validates first, topics apply is idempotent."""

import json
import os
import subprocess
import sys
import uuid

from flowmail.samples import example
from processors.keys import idempotency_key
from tests.integration.helpers import end_offsets, outbox, poll


def flowmail(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "flowmail", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_publish_valid_example_reaches_the_outbox(worker, settings):
    document = example("order.placed")
    document["event_id"] = str(uuid.uuid4())
    result = flowmail("publish", "order.placed", "-", stdin=json.dumps(document))
    assert result.returncode == 0, result.stderr
    key = idempotency_key(document["event_id"], "order_confirmation",
                          document["customer"]["email"])
    [message] = poll(lambda: outbox(settings.outbox_dir).get(key), "the CLI-published email")
    assert message["Content-Language"] == "de"


def test_malformed_json_is_refused_and_nothing_published(stack, settings):
    before = end_offsets(settings.kafka_bootstrap, "order.placed")
    result = flowmail("publish", "order.placed", "-", stdin='{"event_id": "x", ')
    assert result.returncode != 0
    assert "not valid JSON" in result.stderr
    assert end_offsets(settings.kafka_bootstrap, "order.placed") == before


def test_missing_field_is_named_and_nothing_published(stack, settings, tmp_path):
    documents = [example("order.placed"), example("order.placed")]
    del documents[1]["customer"]["email"]
    path = tmp_path / "events.json"
    path.write_text(json.dumps(documents))
    before = end_offsets(settings.kafka_bootstrap, "order.placed")
    result = flowmail("publish", "order.placed", str(path))
    assert result.returncode != 0
    assert "email" in result.stderr and "nothing published" in result.stderr
    assert end_offsets(settings.kafka_bootstrap, "order.placed") == before


def test_unknown_event_type_is_refused(stack):
    result = flowmail("publish", "order.cancelled", "-", stdin="{}")
    assert result.returncode != 0 and "order.cancelled" in result.stderr


def test_topics_apply_is_idempotent(stack):
    first = flowmail("topics", "apply")
    assert first.returncode == 0, first.stderr
    second = flowmail("topics", "apply")
    assert second.returncode == 0 and "all topics up to date" in second.stdout


def test_lag_lists_the_groups_and_a_backlog_shows_up_in_it(worker, settings):
    """`flowmail lag` reads committed offsets and end offsets; the worker's processes export
    the lag of the partitions they hold as flowmail_consumer_lag."""
    import requests

    result = flowmail("lag", "--all-partitions")
    assert result.returncode == 0, result.stderr
    groups = {line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert f"{settings.app_id}-sender-transactional" in groups
    assert f"{settings.app_id}-sink" in groups
    for line in result.stdout.splitlines()[1:]:
        if "(all partitions)" not in line:
            *_, committed, end, lag = line.split()
            assert int(lag) == max(0, int(end) - max(int(committed), 0))

    def exported() -> bool:
        text = "".join(requests.get(f"http://127.0.0.1:{settings.web_port + i}/metrics",
                                    timeout=5).text
                       for i in range((os.cpu_count() or 1) + 1))  # the workers and the lane
        return f'flowmail_consumer_lag{{group="{settings.app_id}-sender-transactional"' in text

    poll(exported, "the senders' lag on /metrics", timeout_s=30)
