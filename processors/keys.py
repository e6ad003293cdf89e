"""Deterministic keys: idempotency key, recipient key (partitioning, pseudonymous analytics)."""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache

# anything shaped like an address, as providers echo them in their texts ("550 5.1.1
# <anna@example.org>: user unknown")
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]@]+@[^\s<>\"'(),;:\[\]@]+")


def normalize_address(address: str) -> str:
    return address.strip().lower()


def idempotency_key(source_event_id: str, email_type: str, recipient: str) -> str:
    """Same event, type and recipient always give the same key: the ledger's dedup unit."""
    material = f"{source_event_id}\x1f{email_type}\x1f{normalize_address(recipient)}"
    # 160 bits: collision-free in practice, and short enough that the header never folds
    return hashlib.sha256(material.encode()).hexdigest()[:40]


def without_addresses(text: str | None) -> str | None:
    """``text`` with every address replaced: a provider's reason goes to analytics, alerts
    and logs, where addresses must not be (they are personal data)."""
    return None if text is None else _ADDRESS.sub("<address>", text)


@lru_cache(maxsize=4096)  # a sender asks twice per email (admission, delivery event)
def recipient_key(recipient: str, secret: bytes = b"") -> str:
    """Keyed hash of the address: partitions per recipient and stands in for it in analytics."""
    return hmac.digest(secret, normalize_address(recipient).encode(), "sha256").hex()[:32]


def recipient_domain(recipient: str) -> str:
    return normalize_address(recipient).rpartition("@")[2]


def delivery_event_id(idem_key: str, status: str, attempt: int) -> str:
    """One id per outcome of one attempt, so a replayed delivery event is indexed once."""
    return hashlib.sha256(f"{idem_key}\x1f{status}\x1f{attempt}".encode()).hexdigest()[:40]
