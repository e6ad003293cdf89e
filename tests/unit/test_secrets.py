"""Secrets: refused when weak or missing outside the local stack, generated and kept for it,
and unsubscribe keys rotate without breaking links already sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.secrets import with_secrets
from core.settings import SettingsError, load_settings
from processors.campaigns import unsubscribe_token, verify_unsubscribe_token

STRONG = "a" * 16 + "0123456789abcdef"
REMOTE = {"FLOWMAIL_KAFKA_BOOTSTRAP": "kafka-0.kafka.prod.internal:9093"}


def test_empty_secrets_outside_the_local_stack_are_refused(tmp_path):
    env = {**REMOTE, "FLOWMAIL_HOME": str(tmp_path)}
    with pytest.raises(SettingsError, match="FLOWMAIL_PSEUDONYM_SECRET is empty and Kafka"):
        with_secrets(load_settings(env))
    env["FLOWMAIL_PSEUDONYM_SECRET"] = STRONG
    with pytest.raises(SettingsError, match="FLOWMAIL_UNSUBSCRIBE_SECRET is empty"):
        with_secrets(load_settings(env))
    env["FLOWMAIL_UNSUBSCRIBE_SECRET"] = STRONG
    with pytest.raises(SettingsError, match="FLOWMAIL_TRACKING_SECRET is empty"):
        with_secrets(load_settings(env))
    # no tracking, no tracking secret needed
    assert with_secrets(load_settings({**env, "FLOWMAIL_TRACKING_TYPES": ""})
                        ).unsubscribe_secret == STRONG
    env["FLOWMAIL_TRACKING_SECRET"] = STRONG
    assert with_secrets(load_settings(env)).unsubscribe_secret == STRONG
    assert not (tmp_path / "secrets.json").exists()


@pytest.mark.parametrize(("name", "value", "message"), [
    ("FLOWMAIL_UNSUBSCRIBE_SECRET", "short", "too short"),
    ("FLOWMAIL_UNSUBSCRIBE_SECRET", f"{STRONG},short", "too short"),
    ("FLOWMAIL_PSEUDONYM_SECRET", f"{STRONG},{STRONG}", "takes one key"),
])
def test_weak_secrets_are_refused_everywhere(tmp_path, name, value, message):
    env = {"FLOWMAIL_HOME": str(tmp_path), "FLOWMAIL_PSEUDONYM_SECRET": STRONG,
           "FLOWMAIL_UNSUBSCRIBE_SECRET": STRONG, name: value}
    with pytest.raises(SettingsError, match=message):
        with_secrets(load_settings(env))


def test_the_local_stack_generates_its_secrets_once_and_keeps_them(tmp_path):
    env = {"FLOWMAIL_HOME": str(tmp_path)}
    first = with_secrets(load_settings(env))
    second = with_secrets(load_settings(env))
    assert len(first.pseudonym_secret) >= 32 and len(first.unsubscribe_secret) >= 32
    assert first.pseudonym_secret != first.unsubscribe_secret
    assert (second.pseudonym_secret, second.unsubscribe_secret) == (
        first.pseudonym_secret, first.unsubscribe_secret)
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_a_worker_started_with_empty_secrets_outside_the_local_stack_refuses():
    env = {"PATH": "/usr/bin:/bin", **REMOTE}
    result = subprocess.run([sys.executable, "-m", "flowmail", "worker"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "FLOWMAIL_PSEUDONYM_SECRET is empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_rotation_keeps_links_already_sent_working():
    old, new = "old-" + STRONG, "new-" + STRONG
    sent_before = unsubscribe_token(old, "rk-1", "shop-042")
    rotated = f"{new},{old}"
    assert verify_unsubscribe_token(rotated, sent_before) == ("rk-1", "shop-042")
    sent_after = unsubscribe_token(rotated, "rk-1", "shop-042")
    assert sent_after.split(".")[0] != sent_before.split(".")[0]  # signed by the new key
    assert verify_unsubscribe_token(new, sent_after) == ("rk-1", "shop-042")
    assert verify_unsubscribe_token(new, sent_before) is None  # old key retired
    forged = sent_before.split(".")
    forged[2] = unsubscribe_token(old, "rk-1", "shop-999").split(".")[2]
    assert verify_unsubscribe_token(rotated, ".".join(forged)) is None


def _read_all_when(start, home: str, answers) -> None:
    from core.secrets import NAMES, _stored
    start.wait()
    answers.put([_stored(Path(home) / "secrets.json", name) for name in NAMES])


def test_processes_starting_together_on_a_new_home_agree_on_its_secrets(tmp_path):
    """Worker processes start at once on a fresh home (CI saw one fail on the shared temp
    file); each must get the same secrets, which exactly one of them made."""
    import multiprocessing
    context = multiprocessing.get_context("fork")
    start, answers = context.Event(), context.Queue()
    processes = [context.Process(target=_read_all_when, args=(start, str(tmp_path), answers))
                 for _ in range(16)]
    for process in processes:
        process.start()
    start.set()  # all at once
    got = [answers.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert all(process.exitcode == 0 for process in processes)
    assert len({tuple(a) for a in got}) == 1
    assert len(set(got[0])) == len(got[0])  # one secret per name
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
