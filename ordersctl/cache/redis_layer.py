"""Orders in Redis (``order:{uid}`` -> the order's JSON). Redis is optional: errors mean "miss", never fail,
and without a client (``redis.url`` empty) the layer is off: every get a miss, nothing written, nothing logged.

After an error the layer stays off for a short while (no request waits on a dead Redis), then tries again,
so the cache comes back by itself when Redis does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import redis

log = logging.getLogger(__name__)


class RedisPipeline(Protocol):
    """The part of a ``redis.client.Pipeline`` the layer uses."""

    def set(self, name: str, value: bytes, /, *, ex: int) -> object: ...

    def execute(self) -> object: ...


class RedisClient(Protocol):
    """The part of ``redis.Redis`` the layer uses, so that a stand-in with the same methods type-checks too."""

    def get(self, name: str, /) -> object: ...

    def pipeline(self, *, transaction: bool) -> RedisPipeline: ...

    def ping(self) -> object: ...


def key(order_uid: str) -> str:
    return f"order:{order_uid}"


class RedisOrderCache:
    """Get/set order JSON in Redis with a TTL; a Redis failure is logged once and treated as a miss."""

    def __init__(
        self,
        client: RedisClient | None,
        ttl_seconds: int,
        retry_after: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """False when there is no Redis at all (``redis.url`` empty)."""
        return self._client is not None

    @property
    def available(self) -> bool:
        """False without Redis, and during the back-off after a failure: the layer is skipped without asking."""
        return self._client is not None and self._clock() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            if self.available:
                log.warning("redis unavailable, serving from PostgreSQL", extra={"error": type(exc).__name__})
            self._down_until = self._clock() + self._retry_after

    def get(self, order_uid: str) -> bytes | None:
        if not self.available or self._client is None:
            return None
        try:
            value = self._client.get(key(order_uid))
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        return value if isinstance(value, bytes) else None

    def set_many(self, items: Iterable[tuple[str, bytes]]) -> int:
        """Pipelined SETs with TTL; returns how many were written (0 when Redis is down)."""
        if not self.available or self._client is None:
            return 0
        pipe = self._client.pipeline(transaction=False)
        count = 0
        for uid, value in items:
            pipe.set(key(uid), value, ex=self._ttl)
            count += 1
        try:
            pipe.execute()
        except redis.RedisError as exc:
            self._failed(exc)
            return 0
        return count

    def ping(self) -> bool:
        """Whether Redis answers now; an answer ends the back-off at once (readiness probes ask this)."""
        if self._client is None:
            return False
        try:
            ok = bool(self._client.ping())
        except redis.RedisError as exc:
            self._failed(exc)
            return False
        with self._lock:
            self._down_until = 0.0
        return ok
