"""The in-process layer: a bounded, thread-safe LRU of order JSON with a TTL."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable


class MemoryLRU:
    """A bounded, thread-safe LRU of order JSON with a TTL; ``max_entries`` 0 keeps nothing (a no-op layer).

    An expired entry goes when it is read or pushed out by the bound; nothing sweeps (no timer thread to run).
    """

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, uid: str) -> bytes | None:
        with self._lock:
            entry = self._data.get(uid)
            if entry is None:
                return None
            expires, value = entry
            if expires < self._clock():
                del self._data[uid]
                return None
            self._data.move_to_end(uid)
            return value

    def set(self, uid: str, value: bytes) -> None:
        if self._max <= 0:
            return
        with self._lock:
            self._data[uid] = (self._clock() + self._ttl, value)
            self._data.move_to_end(uid)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)
