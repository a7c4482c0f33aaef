"""Is each service reachable, and how long does one request take on an open connection."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ordersctl.observe.sources import DEPENDENCY_ERRORS, Sources, short_error


@dataclass(frozen=True)
class ServiceCheck:
    """One service: up or down, the round trip of one request (ms), and why it is down."""

    name: str
    address: str
    up: bool
    rtt_ms: float | None = None
    error: str | None = None
    disabled: bool = False  # turned off by the settings (Redis with redis.url empty): not a problem

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "up": self.up, "rtt_ms": self.rtt_ms, "error": self.error,
                "disabled": self.disabled}  # fmt: skip


def _timed(request: Callable[[], object]) -> float:
    started = time.perf_counter()
    request()
    return (time.perf_counter() - started) * 1000


def _check(name: str, address: str, measure: Callable[[], float]) -> ServiceCheck:
    try:
        rtt = measure()
    except DEPENDENCY_ERRORS as exc:
        return ServiceCheck(name, address, False, None, short_error(exc))
    return ServiceCheck(name, address, True, round(rtt, 2))


def _postgres_rtt(src: Sources) -> float:
    with src.connect() as conn:
        return _timed(lambda: conn.execute("SELECT 1"))


def _redis_rtt(src: Sources) -> float:
    redis = src.redis
    assert redis is not None  # checked only when Redis is on
    redis.ping()  # the client connects on its first command: that one is not timed
    return _timed(redis.ping)


def _kafka_rtt(src: Sources) -> float:
    topic = src.settings.kafka.orders_topic
    src.kafka.ping(topic)  # the first request may also connect to the broker
    return _timed(lambda: src.kafka.ping(topic))


def check_services(src: Sources) -> list[ServiceCheck]:
    """PostgreSQL, Redis and Kafka, in that order, each timed on an open connection; a service that is down
    never raises."""
    where = src.addresses()
    redis = (
        _check("Redis", where["Redis"], lambda: _redis_rtt(src))
        if src.redis is not None
        else ServiceCheck("Redis", where["Redis"], False, error="off (redis.url is empty)", disabled=True)
    )
    return [
        _check("PostgreSQL", where["PostgreSQL"], lambda: _postgres_rtt(src)),
        redis,
        _check("Kafka", where["Kafka"], lambda: _kafka_rtt(src)),
    ]
