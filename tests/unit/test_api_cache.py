"""The read-path cache with fakes: layers, TTL, LRU bound, single flight, Redis failures as misses."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from ordersctl.adapters.redis_cache import RedisOrderCache
from ordersctl.api.cache import MemoryLRU, OrderCache
from ordersctl.api.openapi import openapi_path, to_openapi30
from ordersctl.errors import TransientError


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
    loader: Any, fake: FakeRedis | None = None, retry_after: float = 2.0, **options: float
) -> tuple[OrderCache, FakeRedis]:
    fake = fake or FakeRedis()
    layer = RedisOrderCache(fake, 60, retry_after=retry_after)  # type: ignore[arg-type]
    return OrderCache(MemoryLRU(100, 60), layer, loader, **options), fake


def test_read_through_fills_both_layers() -> None:
    cache, fake = _cache(lambda uid: b'{"u":1}' if uid == "a" else None)
    assert cache.get("a") == (b'{"u":1}', "db")
    assert cache.get("a") == (b'{"u":1}', "memory")
    assert fake.data == {"order:a": b'{"u":1}'}
    cache.memory = MemoryLRU(100, 60)
    assert cache.get("a") == (b'{"u":1}', "redis")
    assert cache.get("missing") == (None, "db")


def test_memory_lru_is_bounded_and_expires() -> None:
    lru = MemoryLRU(2, 0.05)
    lru.set("a", b"1")
    lru.set("b", b"2")
    lru.get("a")
    lru.set("c", b"3")  # evicts b, the least recently used
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (b"1", None, b"3")
    time.sleep(0.06)
    assert lru.get("a") is None and len(lru) == 1


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
    time.sleep(0.2)
    gate.set()
    for t in threads:
        t.join()
    assert calls == 1
    assert len(results) == 16 and all(v == b"{}" for v, _ in results)


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
    cache, _ = _cache(lambda uid: b"{}", fake, retry_after=0.2)
    assert cache.get("a") == (b"{}", "db")
    calls = fake.calls
    cache.memory = MemoryLRU(100, 60)
    assert cache.get("a") == (b"{}", "db")
    assert fake.calls == calls, "a dead Redis is not asked again at once"
    fake.down = False
    time.sleep(0.25)
    cache.memory = MemoryLRU(100, 60)
    assert cache.get("a") == (b"{}", "db")
    assert fake.data == {"order:a": b"{}"}, "the cache comes back by itself"


def test_openapi_helpers() -> None:
    assert openapi_path("/orders/{order_uid}") == "/orders/{order_uid}"
    assert openapi_path("/x/{id:int}/{name}") == "/x/{id}/{name}"
    converted = to_openapi30({"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Next"})
    assert converted == {"type": "string", "nullable": True, "title": "Next"}
    assert to_openapi30({"const": "ok"}) == {"enum": ["ok"]}
