"""The read-through cache with fakes: layers, single flight, Redis failures as misses."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from ordersctl.cache.memory import MemoryLRU
from ordersctl.cache.read_through import OrderCache
from ordersctl.cache.redis_layer import RedisOrderCache
from ordersctl.errors import TransientError
from tests.fakes import FakeClock
from tests.waiting import wait_for


class FakeRedis:
    """The slice of redis.Redis the cache uses; ``down`` makes every call fail like a dead server."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            raise redis.ConnectionError("down")

    def get(self, key: str) -> bytes | None:
        self._check()
        return self.data.get(key)

    def ping(self) -> bool:
        self._check()
        return True

    def pipeline(self, transaction: bool = False) -> Any:
        fake = self
        ops: list[tuple[str, bytes]] = []

        class Pipe:
            def set(self, key: str, value: bytes, ex: int) -> None:
                ops.append((key, value))

            def execute(self) -> None:
                fake._check()
                fake.data.update(ops)

        return Pipe()


def _cache(
    loader: Any, fake: FakeRedis | None = None, retry_after: float = 2.0, clock: FakeClock | None = None, **options: Any
) -> tuple[OrderCache, FakeRedis]:
    fake = fake or FakeRedis()
    layer = RedisOrderCache(fake, 60, retry_after=retry_after, clock=clock or FakeClock())
    return OrderCache(MemoryLRU(100, 60), layer, loader, **options), fake


def test_read_through_fills_both_layers() -> None:
    cache, fake = _cache(lambda uid: b'{"u":1}' if uid == "a" else None)
    assert cache.get("a") == (b'{"u":1}', "db")
    assert cache.get("a") == (b'{"u":1}', "memory")
    assert fake.data == {"order:a": b'{"u":1}'}
    cache.memory = MemoryLRU(100, 60)
    assert cache.get("a") == (b'{"u":1}', "redis")
    assert cache.get("missing") == (None, "db")


def test_concurrent_misses_make_one_database_read() -> None:
    calls = 0
    gate = threading.Event()

    def slow_load(uid: str) -> bytes:
        nonlocal calls
        calls += 1
        gate.wait(2)
        return b"{}"

    cache, _ = _cache(slow_load)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k"))) for _ in range(16)]
    for t in threads:
        t.start()
    # The first reader is in the database read, held by the gate; every other one waits for its answer.
    wait_for(lambda: cache.waiters("k") == 15, 5, "15 readers waiting for the first one's read", interval=0.005)
    gate.set()
    for t in threads:
        t.join()
    assert calls == 1
    assert len(results) == 16 and all(v == b"{}" for v, _ in results)
    assert cache.waiters("k") == 0, "the finished read is no longer in flight"


def test_a_reader_that_gives_up_waiting_reads_the_database_itself_not_404() -> None:
    stored = b'{"order_uid":"k"}'
    leader_reading = threading.Event()
    release_leader = threading.Event()
    calls: list[str] = []

    def slow_then_fast(uid: str) -> bytes:
        calls.append(uid)
        if len(calls) == 1:  # the first reader's database read hangs until the test lets it go
            leader_reading.set()
            release_leader.wait(10)
        return stored

    cache, fake = _cache(slow_then_fast, wait_seconds=0.05)
    leader_result: list[Any] = []
    leader = threading.Thread(target=lambda: leader_result.append(cache.get("k")))
    leader.start()
    try:
        assert leader_reading.wait(5)
        assert cache.get("k") == (stored, "db"), "the stored order, read by the reader that gave up waiting"
        assert fake.data == {"order:k": stored}
    finally:
        release_leader.set()
        leader.join(10)
    assert calls == ["k", "k"]
    assert leader_result == [(stored, "db")]


def test_a_reader_that_gives_up_waiting_fails_like_the_database() -> None:
    leader_reading = threading.Event()
    release_leader = threading.Event()
    calls: list[str] = []

    def slow_then_down(uid: str) -> bytes:
        calls.append(uid)
        if len(calls) == 1:
            leader_reading.set()
            release_leader.wait(10)
            return b"{}"
        raise TransientError("database down")

    cache, _ = _cache(slow_then_down, wait_seconds=0.05)
    leader = threading.Thread(target=cache.get, args=("k",))
    leader.start()
    try:
        assert leader_reading.wait(5)
        with pytest.raises(TransientError):  # the API answers 503 for it
            cache.get("k")
    finally:
        release_leader.set()
        leader.join(10)


def test_redis_down_is_a_miss_then_skipped_then_retried() -> None:
    fake = FakeRedis()
    fake.down = True
    clock = FakeClock()
    cache, _ = _cache(lambda uid: b"{}", fake, retry_after=0.2, clock=clock)
    assert cache.get("a") == (b"{}", "db")
    calls = fake.calls
    cache.memory = MemoryLRU(100, 60)
    assert cache.get("a") == (b"{}", "db")
    assert fake.calls == calls, "a dead Redis is not asked again at once"
    fake.down = False
    clock.advance(0.25)
    cache.memory = MemoryLRU(100, 60)
    assert cache.get("a") == (b"{}", "db")
    assert fake.data == {"order:a": b"{}"}, "the cache comes back by itself"
