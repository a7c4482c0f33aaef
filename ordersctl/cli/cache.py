"""``ordersctl cache``: the Redis order cache."""

from __future__ import annotations

from typing import Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.config import mask_url
from ordersctl.errors import ServiceUnavailable
from ordersctl.output import info, print_json, progress

app = typer.Typer(help="The Redis order cache.\n\nExample: ordersctl cache warm --limit 5000", no_args_is_help=True)


@app.command("warm")
def warm_cmd(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many of the most recent orders.")] = 1000,
    all_orders: Annotated[bool, typer.Option("--all", help="Every stored order (overrides --limit).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Load the most recent orders into Redis (pipelined), with a progress bar.

    Example: ordersctl cache warm --limit 5000      (or: ordersctl cache warm --all --json)
    """
    from ordersctl.adapters.redis_cache import RedisOrderCache
    from ordersctl.api.cache import MemoryLRU, OrderCache
    from ordersctl.api.warmup import total, warm

    rt = app_context(ctx).runtime
    redis_cache = RedisOrderCache(rt.redis, rt.settings.redis.ttl_seconds)
    if not redis_cache.ping():
        raise ServiceUnavailable("Redis", mask_url(rt.settings.redis.url).split("://", 1)[-1])
    cache = OrderCache(MemoryLRU(0, 1), redis_cache, lambda uid: None)
    wanted = None if all_orders else limit
    with progress() as bar:
        task = bar.add_task("cache warm", total=total(rt, wanted))
        count, seconds = warm(rt, cache, wanted, memory=False, on_page=lambda n: bar.advance(task, n))
    rate = count / seconds if seconds > 0 else 0.0
    if as_json:
        print_json({"warmed": count, "seconds": round(seconds, 3), "rate": round(rate, 1)})
    info(f"cache warm: {count} orders into Redis in {seconds:.2f}s ({rate:.0f}/s)")
