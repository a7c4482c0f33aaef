"""The cache package on the real Redis and PostgreSQL: the Redis layer's writes and reads, and the warm-up
from the stored orders (what ``cache warm`` and each ``serve`` process run)."""

from __future__ import annotations

import uuid

import pytest

from ordersctl.cache.memory import MemoryLRU
from ordersctl.cache.redis_layer import RedisOrderCache, key
from ordersctl.cache.warmup import RecentOrders, warm
from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rules import decode_order
from ordersctl.runtime import Runtime
from tests.helpers import store_orders

pytestmark = pytest.mark.integration


def test_redis_layer_writes_with_the_ttl_and_reads_back(runtime: Runtime) -> None:
    layer = RedisOrderCache(runtime.redis, ttl_seconds=30)
    uids = [f"test-{uuid.uuid4().hex}" for _ in range(3)]
    try:
        assert layer.ping()
        assert layer.set_many((uid, f'{{"n":{i}}}'.encode()) for i, uid in enumerate(uids)) == 3
        assert [layer.get(uid) for uid in uids] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
        assert all(0 < runtime.redis.ttl(key(uid)) <= 30 for uid in uids)
        assert layer.get(f"test-{uuid.uuid4().hex}") is None
    finally:
        runtime.redis.delete(*(key(uid) for uid in uids))


def test_warm_up_writes_the_most_recent_orders_to_redis_and_memory(runtime: Runtime, settings: Settings) -> None:
    orders = [decode_order(m.value) for m in OrderGenerator(seed=4242).messages(12)]
    store_orders(settings.postgres.dsn, orders)
    newest = sorted(orders, key=lambda o: (o.date_created, o.order_uid), reverse=True)[:5]
    layer = RedisOrderCache(runtime.redis, ttl_seconds=60)
    memory = MemoryLRU(100, 60)
    recent = RecentOrders(runtime.pg_connection, runtime.store.reads, 5)
    pages: list[int] = []
    try:
        assert recent.count() == 5
        assert RecentOrders(runtime.pg_connection, runtime.store.reads, None).count() == 12
        count, _ = warm(layer, recent, memory=memory, on_page=pages.append)
        assert count == 5 and sum(pages) == 5
        for order in newest:
            stored = order.model_dump_json().encode()
            assert runtime.redis.get(key(order.order_uid)) == stored
            assert memory.get(order.order_uid) == stored
        assert len(memory) == 5, "only the five most recent"
    finally:
        runtime.redis.delete(*(key(o.order_uid) for o in orders))
