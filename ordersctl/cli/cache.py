"""``ordersctl cache``: the Redis order cache."""

from __future__ import annotations

from typing import Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.errors import ServiceUnavailable
from ordersctl.masking import mask_url
from ordersctl.output import info, print_json, progress

app = typer.Typer(help="The Redis order cache.\n\nExample: ordersctl cache warm --limit 5000", no_args_is_help=True)


@app.command("warm")
def warm_cmd(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many of the most recent orders.")] = 1000,
    all_orders: Annotated[bool, typer.Option("--all", help="Every stored order (overrides --limit).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Load the most recent orders into Redis (pipelined), with a progress bar. Without Redis (redis.url
    empty) there is nothing to warm: it says so and exits 0.

    Example: ordersctl cache warm --limit 5000      (or: ordersctl cache warm --all --json)
    """
    from ordersctl.cache.redis_layer import RedisOrderCache
    from ordersctl.cache.warmup import RecentOrders, warm

    rt = app_context(ctx).runtime
    if not rt.settings.redis.enabled:
        if as_json:
            print_json({"warmed": 0, "redis": "disabled"})
        info("cache warm: Redis is off (redis.url is empty): nothing to warm")
        return
    redis_layer = RedisOrderCache(rt.redis, rt.settings.redis.ttl_seconds)
    if not redis_layer.ping():
        raise ServiceUnavailable("Redis", mask_url(rt.settings.redis.url).split("://", 1)[-1])
    recent = RecentOrders(rt.pg_connection, rt.store.reads, None if all_orders else limit)
    with progress() as bar:
        task = bar.add_task("cache warm", total=recent.count())
        count, seconds = warm(redis_layer, recent, on_page=lambda n: bar.advance(task, n))
    rate = count / seconds if seconds > 0 else 0.0
    if as_json:
        print_json({"warmed": count, "seconds": round(seconds, 3), "rate": round(rate, 1)})
    info(f"cache warm: {count} orders into Redis in {seconds:.2f}s ({rate:.0f}/s)")
