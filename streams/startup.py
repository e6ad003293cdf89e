"""Retrying the first calls against a broker that is still starting.

Right after Kafka's first start, the group coordinator loads its log (NOT_COORDINATOR,
COORDINATOR_LOAD_IN_PROGRESS), metadata may name no leader yet, and the socket may not
accept. Each call here is retried until a deadline, then fails with a message that says
what was waited for and the last error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRIABLE = frozenset({
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NETWORK_EXCEPTION, KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION,
    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
    KafkaError._WAIT_COORD, KafkaError._NO_OFFSET,
})


class StartupTimeout(RuntimeError):
    """A broker call kept failing with a start-up error until its deadline."""


def retriable(err: KafkaException) -> bool:
    error = err.args[0] if err.args else None
    return isinstance(error, KafkaError) and (error.retriable() or error.code() in RETRIABLE)


def until_ready(call: Callable[[], T], what: str, timeout_s: float = 120.0,
                pause_s: float = 0.5, clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()`` until it returns, retrying start-up errors for ``timeout_s``."""
    deadline = clock() + timeout_s
    while True:
        try:
            return call()
        except KafkaException as err:
            if not retriable(err):
                raise
            if clock() > deadline:
                raise StartupTimeout(f"{what}: Kafka still not ready after {timeout_s:.0f}s "
                                     f"({err.args[0].str()})") from err
            log.info("%s: %s; retrying", what, err.args[0].str())
            sleep(pause_s)
