"""``ordersctl status`` and ``ordersctl trace``: is the pipeline healthy, and where is one order."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.observe.stall import DEFAULT_STALL_SECONDS, CommitWatch
from ordersctl.observe.thresholds import DEFAULT_MAX_OUTBOX_AGE_SECONDS, Thresholds
from ordersctl.output import info, out_console, print_json

if TYPE_CHECKING:
    from ordersctl.observe.sources import Sources
    from ordersctl.observe.status import PipelineStatus


def _since(value: str, option: str = "--since") -> datetime:
    from ordersctl.dlq.reader import parse_since

    try:
        return parse_since(value)
    except ValueError:
        raise typer.BadParameter("use an RFC 3339 time or a duration like 30m, 2h, 7d", param_hint=option) from None


def _sources(ctx: typer.Context) -> Sources:
    """What status and trace read through, its Kafka clients built first: they connect while psycopg and redis-py
    are imported (observe/kafka_view.py), so import what else the command needs after this."""
    from ordersctl.observe.kafka_view import kafka_view

    runtime = app_context(ctx).runtime
    kafka = kafka_view(runtime)
    from ordersctl.observe.sources import Sources

    return Sources.from_runtime(runtime, kafka=kafka)


def _show(status: PipelineStatus, as_json: bool) -> None:
    from ordersctl.cli.observe_views import status_view

    if as_json:
        print_json(status.as_json())
        for problem in status.problems():
            info(f"status: {problem}")
    else:
        out_console.print(status_view(status))


def _watch(read: Callable[[], PipelineStatus], every: float, as_json: bool) -> int:
    """Refresh until interrupted; returns the exit code of the last status read."""
    from rich.live import Live

    from ordersctl.cli.observe_views import status_view

    last = 130
    try:
        if as_json or not out_console.is_terminal:
            while True:
                status = read()
                last = status.exit_code()
                _show(status, as_json)
                time.sleep(every)  # the refresh interval asked for, not a wait for anything
        with Live(console=out_console, auto_refresh=False) as live:
            while True:
                status = read()
                last = status.exit_code()
                live.update(status_view(status), refresh=True)
                time.sleep(every)
    except KeyboardInterrupt:
        return last


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout (a line a refresh).")] = False,
    watch: Annotated[float | None, typer.Option(min=0.5, help="Refresh every this many seconds.")] = None,
    since: Annotated[str, typer.Option(help="DLQ window: RFC 3339 time or 30m / 2h / 7d ago.")] = "1h",
    max_lag: Annotated[int | None, typer.Option(min=0, help="Exit 4 when the total lag is above this.")] = None,
    max_outbox_age: Annotated[
        float, typer.Option(min=0, help="Exit 1 when the oldest pending event is older (seconds).")
    ] = DEFAULT_MAX_OUTBOX_AGE_SECONDS,
    stall_seconds: Annotated[
        float,
        typer.Option(min=0, help="Exit 1 when lagging committed offsets have not moved this long (0: not watched)."),
    ] = DEFAULT_STALL_SECONDS,
) -> None:
    """Is the pipeline healthy: lag per partition of the orders topic, the group's state and members, dead
    letters by reason, the outbox backlog, and each service's round trip. Reads Kafka without joining the group.

    Exit codes: 0 healthy; 1 PostgreSQL or Kafka is down, a section could not be read (say a missing topic),
    the outbox's oldest event is older than --max-outbox-age, or the pipeline has stopped while orders wait: lag
    with no member in the group, or lag whose committed offsets have not moved for --stall-seconds; 4 the total
    lag is above --max-lag; 6 degraded: Redis is down (serve answers from memory and PostgreSQL; Redis turned
    off, redis.url empty, is healthy). 1 beats 4, 4 beats 6. With --watch it runs until interrupted and exits
    with the code of the last refresh. --json says why under "problems" and "stall".

    Kafka keeps no time of a group's last commit, so with lag and members status watches the lagging
    partitions' committed offsets: it answers once each has moved (a working pipeline: within a batch), and
    only a stalled one makes it wait the full --stall-seconds (it says so on stderr).

    Example: ordersctl status --max-lag 10000 --since 2h   (or: ordersctl status --watch 5)
    """
    _since(since)  # a bad value is a usage error before anything is read
    src = _sources(ctx)
    from ordersctl.observe.status import read_status

    thresholds = Thresholds(max_lag, max_outbox_age, stall_seconds or None)
    commits = CommitWatch()  # one over every refresh of --watch: a stall already seen is not waited for again

    def read() -> PipelineStatus:
        # The window is taken again at each refresh: "1h" keeps meaning the last hour.
        return read_status(src, _since(since), thresholds, commits, note=lambda text: info(f"status: {text}"))

    if watch is not None:
        raise typer.Exit(_watch(read, watch, as_json))
    result = read()
    _show(result, as_json)
    raise typer.Exit(result.exit_code())


def trace(
    ctx: typer.Context,
    order_uid: Annotated[str, typer.Argument(help="The order_uid to look for.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
    since: Annotated[str, typer.Option(help="Scan topics from: RFC 3339 time or 30m / 2h / 7d ago.")] = "7d",
) -> None:
    """The life of one order: its records on the orders topic (committed or not), its dead letters, the stored
    row (time, fingerprint, items), its "order saved" event and whether Redis caches it. Ids, offsets, times
    and reasons only: never the order's content. Only the partition the key maps to is scanned.

    Exit codes: 0 stored; 5 not stored but dead-lettered; 1 otherwise (found nowhere, still waiting on the
    orders topic, or a source needed for the answer is down).

    Example: ordersctl trace 7f3a9c0e12d44b5e8a01 --since 2d --json
    """
    from ordersctl.domain.order import is_order_uid

    if not is_order_uid(order_uid):
        raise typer.BadParameter("letters, digits, _ and -, at most 64", param_hint="ORDER_UID")
    since_at = _since(since)  # before any client is built: a usage error touches no service
    src = _sources(ctx)
    from ordersctl.cli.observe_views import trace_view
    from ordersctl.observe.trace import trace_order

    result = trace_order(src, order_uid, since_at)
    if as_json:
        print_json(result.as_json())
        for section, why in result.unread.items():
            info(f"trace: {section} not read: {why}")
    else:
        out_console.print(trace_view(result))
    raise typer.Exit(result.exit_code())
