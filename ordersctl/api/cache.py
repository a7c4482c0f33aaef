"""The read path's cache: in-process LRU -> Redis -> PostgreSQL, read-through.

Orders never change once stored, so a cached order is never stale. Concurrent misses for one order wait for
a single database read (single flight).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ordersctl.adapters.redis_cache import RedisOrderCache

Loader = Callable[[str], bytes | None]


class MemoryLRU:
    """A bounded, thread-safe LRU of order JSON with a TTL."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uid: str) -> bytes | None:
        with self._lock:
            entry = self._data.get(uid)
            if entry is None:
                return None
            expires, value = entry
            if expires < time.monotonic():
                del self._data[uid]
                return None
            self._data.move_to_end(uid)
            return value

    def set(self, uid: str, value: bytes) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._data[uid] = (time.monotonic() + self._ttl, value)
            self._data.move_to_end(uid)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class _Flight:
    done: threading.Event = field(default_factory=threading.Event)
    value: bytes | None = None
    error: BaseException | None = None


class OrderCache:
    """``get(uid)`` -> (order JSON or None, layer it came from: "memory" | "redis" | "db")."""

    def __init__(self, memory: MemoryLRU, redis_cache: RedisOrderCache, load: Loader) -> None:
        self.memory = memory
        self.redis = redis_cache
        self._load = load
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

    def _load_once(self, uid: str) -> bytes | None:
        with self._lock:
            flight = self._flights.get(uid)
            leader = flight is None
            if flight is None:
                flight = self._flights[uid] = _Flight()
        if not leader:
            flight.done.wait(30)
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = self._load(uid)
            if flight.value is not None:
                self.put(uid, flight.value)
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[uid]
            flight.done.set()

    def put(self, uid: str, value: bytes) -> None:
        self.memory.set(uid, value)
        self.redis.set_many([(uid, value)])

    def warm(self, pages: Iterator[list[tuple[str, bytes]]], memory: bool = True) -> int:
        """Fill Redis (and memory) from pages of (uid, JSON); returns how many were loaded."""
        count = 0
        for page in pages:
            if memory:
                for uid, value in page:
                    self.memory.set(uid, value)
            self.redis.set_many(page)
            count += len(page)
        return count
