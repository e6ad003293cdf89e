"""The HMAC secrets, checked before anything runs with them.

FLOWMAIL_PSEUDONYM_SECRET turns addresses into recipient keys (partitioning, analytics);
FLOWMAIL_UNSUBSCRIBE_SECRET signs unsubscribe links; FLOWMAIL_TRACKING_SECRET signs open and
click tracking ids (needed only while FLOWMAIL_TRACKING_TYPES names a type). An empty or
short key makes them guessable: anyone could unsubscribe any customer, forge clicks, or
reverse a "pseudonym" by hashing guessed addresses. So:

* a given secret must have at least MIN_CHARS characters (each, for a rotation list);
* an empty secret is generated once and kept in ``<FLOWMAIL_HOME>/secrets.json`` (mode 0600)
  only when Kafka is on this machine (the local stack, the demo, the tests); anywhere else
  the command refuses to start and says what to set.

Rotation: FLOWMAIL_UNSUBSCRIBE_SECRET and FLOWMAIL_TRACKING_SECRET may list several keys,
``new,old``: the first signs, every one verifies, so links already sent keep working. The
pseudonym secret cannot rotate this way: it decides partitions and analytics identities.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets as random_secrets
from dataclasses import replace
from pathlib import Path

from core.settings import Settings, SettingsError

MIN_CHARS = 32
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
NAMES = ("pseudonym_secret", "unsubscribe_secret", "tracking_secret")


def on_this_machine(bootstrap: str) -> bool:
    hosts = {server.rsplit(":", 1)[0].strip() for server in bootstrap.split(",")}
    return hosts <= LOCAL_HOSTS


def with_secrets(settings: Settings) -> Settings:
    """``settings`` with its secrets checked, or generated for the local stack."""
    values = {}
    for name in NAMES:
        if name == "tracking_secret" and not settings.tracking_types.strip():
            continue
        value = getattr(settings, name)
        variable = f"FLOWMAIL_{name.upper()}"
        if value:
            keys = value.split(",")
            if name == "pseudonym_secret" and len(keys) > 1:
                raise SettingsError(f"{variable} takes one key: recipient keys decide "
                                    "partitions, so it cannot be rotated by a key list")
            if any(len(key.strip()) < MIN_CHARS for key in keys):
                raise SettingsError(f"{variable} is too short: use at least {MIN_CHARS} "
                                    "random characters (e.g. `openssl rand -hex 32`)")
            continue
        if not on_this_machine(settings.kafka_bootstrap):
            raise SettingsError(
                f"{variable} is empty and Kafka ({settings.kafka_bootstrap}) is not the local "
                f"stack: set it to at least {MIN_CHARS} random characters (e.g. `openssl rand "
                "-hex 32`), the same value for every flowmail process")
        values[name] = _stored(settings.home / "secrets.json", name)
    return replace(settings, **values) if values else settings


def _stored(path: Path, name: str) -> str:
    """The local stack's own secret: generated once, then read back by every process. A
    lock file makes read-generate-write one step: worker processes starting together on a
    new home would otherwise each make a different secret (and trip over one temp file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = json.loads(path.read_text()) if path.exists() else {}
        if name not in stored:
            stored[name] = random_secrets.token_hex(32)
            descriptor = os.open(path.with_suffix(".tmp"),
                                 os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(stored, handle)
            os.replace(path.with_suffix(".tmp"), path)
        return stored[name]
