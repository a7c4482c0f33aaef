"""Warm-up: the most recent orders from PostgreSQL into Redis, and into the in-process LRU of a server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ordersctl.adapters.order_store.reads import OrderReads
from ordersctl.cache.memory import MemoryLRU
from ordersctl.cache.redis_layer import RedisOrderCache

Page = list[tuple[str, bytes]]  # (order_uid, order JSON)
Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


class RecentOrders:
    """The order source of a warm-up: the ``limit`` most recent stored orders (every one when None), iterated as
    pages, most recent first, on one connection held while the pages are consumed."""

    def __init__(self, connect: Connect, reads: OrderReads, limit: int | None) -> None:
        self._connect = connect  # its connections translate PostgreSQL errors (Runtime.pg_connection)
        self._reads = reads
        self._limit = limit

    def count(self) -> int:
        """How many orders the pages hold (a progress bar's total)."""
        with self._connect() as conn:
            stored = self._reads.count(conn)
        return stored if self._limit is None else min(self._limit, stored)

    def __iter__(self) -> Iterator[Page]:
        with self._connect() as conn:
            yield from self._reads.iter_recent_json(conn, self._limit)


def warm(
    redis_layer: RedisOrderCache,
    source: Iterable[Page],
    *,
    memory: MemoryLRU | None = None,
    on_page: Callable[[int], None] | None = None,
) -> tuple[int, float]:
    """Write every page of ``source`` to Redis (pipelined) and to ``memory`` when given; ``on_page`` hears how
    many orders each page held once it is written. Returns (orders loaded, seconds)."""
    started = time.monotonic()
    count = 0
    for page in source:
        if memory is not None:
            for uid, value in page:
                memory.set(uid, value)
        redis_layer.set_many(page)
        count += len(page)
        if on_page is not None:
            on_page(len(page))
    return count, time.monotonic() - started
