"""The read-through cache: in-process LRU -> Redis -> PostgreSQL.

Orders never change once stored, so a cached order is never stale. Concurrent misses for one order wait for
a single database read (single flight); one that waits too long reads the database itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ordersctl.cache.memory import MemoryLRU
from ordersctl.cache.redis_layer import RedisOrderCache

Loader = Callable[[str], bytes | None]
# Longer than the leader's read takes when PostgreSQL answers at all (the pool gives up after a few seconds).
FLIGHT_WAIT_SECONDS = 30.0


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: bytes | None = None
    error: BaseException | None = None
    waiters: int = 0


class OrderCache:
    """``get(uid)`` -> (order JSON or None, layer it came from: "memory" | "redis" | "db")."""

    def __init__(
        self, memory: MemoryLRU, redis_cache: RedisOrderCache, load: Loader, wait_seconds: float = FLIGHT_WAIT_SECONDS
    ) -> None:
        self.memory = memory
        self.redis = redis_cache
        self._load = load
        self._wait_seconds = wait_seconds
        self._flights: dict[str, _Flight] = {}
        self._lock = threading.Lock()

    def get(self, uid: str) -> tuple[bytes | None, str]:
        value = self.memory.get(uid)
        if value is not None:
            return value, "memory"
        value = self.redis.get(uid)
        if value is not None:
            self.memory.set(uid, value)
            return value, "redis"
        return self._load_once(uid), "db"

    def waiters(self, uid: str) -> int:
        """How many readers wait for the database read of ``uid`` in flight (0 when none is)."""
        with self._lock:
            flight = self._flights.get(uid)
            return flight.waiters if flight is not None else 0

    def _load_once(self, uid: str) -> bytes | None:
        with self._lock:
            flight = self._flights.get(uid)
            leader = flight is None
            if flight is None:
                flight = self._flights[uid] = _Flight()
            else:
                flight.waiters += 1
        if not leader:
            if flight.done.wait(self._wait_seconds):
                if flight.error is not None:
                    raise flight.error
                return flight.value
            # The leader's answer is unknown, not "no such order": ask the database ourselves (a database too
            # slow for this read too ends in a TransientError, so a 503, never a 404 for a stored order).
            return self._read(uid)
        try:
            flight.value = self._read(uid)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[uid]
            flight.done.set()

    def _read(self, uid: str) -> bytes | None:
        value = self._load(uid)
        if value is not None:
            self.put(uid, value)
        return value

    def put(self, uid: str, value: bytes) -> None:
        self.memory.set(uid, value)
        self.redis.set_many([(uid, value)])
