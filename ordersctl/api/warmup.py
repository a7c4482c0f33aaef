"""Warm-up: the most recent orders from PostgreSQL into the cache layers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from ordersctl.adapters.order_store import OrderStore
from ordersctl.adapters.postgres import translated
from ordersctl.api.cache import OrderCache
from ordersctl.runtime import Runtime


def warm(
    runtime: Runtime,
    cache: OrderCache,
    limit: int | None,
    *,
    memory: bool = True,
    on_page: Callable[[int], None] | None = None,
) -> tuple[int, float]:
    """Load ``limit`` most recent orders (all when None); returns (count, seconds)."""
    started = time.monotonic()
    store = OrderStore()
    with translated(runtime.settings.postgres), runtime.pg_connection() as conn:

        def pages() -> Iterator[list[tuple[str, bytes]]]:
            for page in store.iter_recent_json(conn, limit):
                yield page
                if on_page is not None:
                    on_page(len(page))

        count = cache.warm(pages(), memory=memory)
    return count, time.monotonic() - started


def total(runtime: Runtime, limit: int | None) -> int:
    with translated(runtime.settings.postgres), runtime.pg_connection() as conn:
        count = OrderStore().count(conn)
    return count if limit is None else min(limit, count)
