"""The in-process layer: LRU bound, TTL, and size 0 as a layer that keeps nothing."""

from __future__ import annotations

from ordersctl.cache.memory import MemoryLRU
from tests.fakes import FakeClock


def test_memory_lru_is_bounded_and_expires() -> None:
    clock = FakeClock()
    lru = MemoryLRU(2, 0.05, clock=clock)
    lru.set("a", b"1")
    lru.set("b", b"2")
    lru.get("a")
    lru.set("c", b"3")  # evicts b, the least recently used
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (b"1", None, b"3")
    clock.advance(0.06)
    assert lru.get("a") is None and len(lru) == 1


def test_size_zero_keeps_nothing() -> None:
    lru = MemoryLRU(0, 60)
    lru.set("a", b"1")
    assert lru.get("a") is None and len(lru) == 0
