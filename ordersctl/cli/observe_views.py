"""Status and trace for people: Rich tables and lines, built here and printed by the caller."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ordersctl.domain.times import utc_z
from ordersctl.observe.nodes_ha import nodes_view
from ordersctl.observe.status import EXIT_DEGRADED, PipelineStatus
from ordersctl.observe.trace_model import MEMORY_CACHE_NOTE, OrderTrace
from ordersctl.output import plain

_NONE = "-"


def _line(markup: str) -> Text:
    return Text.from_markup(markup)


def _titled(title: str, table: Table) -> list[RenderableType]:
    # A line of its own rather than the table's title, which would be wrapped to the table's width.
    return [Text(title, style="bold"), table]


def _services(status: PipelineStatus) -> list[RenderableType]:
    table = Table("service", "address", "state", "round trip", "error")
    for s in status.services:
        state = "[green]up[/green]" if s.up else "off" if s.disabled else "[red]down[/red]"
        rtt = f"{s.rtt_ms:.1f} ms" if s.rtt_ms is not None else _NONE
        table.add_row(s.name, escape(s.address), state, rtt, Text(s.error or ""))
    return _titled("services", table)


def _orders(status: PipelineStatus) -> list[RenderableType]:
    orders = status.orders
    if orders is None:
        return []
    group = orders.group
    title = f"{orders.topic}: group {group.group_id}, {group.state}, {len(group.members)} member(s)"
    table = Table("partition", "committed", "end", "lag", show_footer=True)
    for p in orders.partitions:
        committed = str(p.committed) if p.committed is not None else _NONE
        table.add_row(str(p.partition), committed, str(p.end), str(p.lag))
    table.columns[0].footer = "total"
    table.columns[3].footer = str(orders.total_lag)
    parts = _titled(title, table)
    if group.members:
        members = Table("client id", "host", "partitions")
        for m in group.members:
            members.add_row(Text(m.client_id), Text(m.host), " ".join(map(str, m.partitions)) or _NONE)
        parts += _titled("members", members)
    return parts


def _dlq(status: PipelineStatus) -> list[RenderableType]:
    dlq = status.dlq
    if dlq is None:
        return []
    title = f"{dlq.topic}: {dlq.retained} held, {dlq.in_window} since {utc_z(dlq.since, 'seconds')}"
    if not dlq.by_reason:
        return [Text(title, style="bold")]
    table = Table("reason", "dead letters")
    for reason, count in dlq.by_reason.items():
        table.add_row(plain(reason), str(count))
    return _titled(title, table)


def _outbox(status: PipelineStatus) -> list[RenderableType]:
    if status.outbox is None:
        return []
    age = status.outbox.oldest_age_seconds
    oldest = f", oldest {age:.1f} s old" if age is not None else ""
    return [_line(f"outbox: {status.outbox.pending} pending{oldest}")]


def _citus(status: PipelineStatus) -> list[RenderableType]:
    return [_line(line) for line in status.citus.lines()] if status.citus else []


def _stored(status: PipelineStatus) -> list[RenderableType]:
    if status.stored is None:
        return []
    # Said to be an estimate: the figures are PostgreSQL's statistics, not a count.
    return [_line(f"orders table: about {status.stored.rows} rows, {status.stored.inserted} written"
                  " (PostgreSQL statistics, since their last reset)")]  # fmt: skip


def status_view(status: PipelineStatus) -> Group:
    """Services, the orders topic and its group, the DLQ, the outbox, the orders table, then the verdict."""
    parts: list[RenderableType] = [*_services(status), *nodes_view(status.nodes), *_citus(status), *_orders(status),
                                   *_dlq(status), *_outbox(status), *_stored(status)]  # fmt: skip
    problems = status.problems()
    for problem in problems:
        parts.append(_line(f"[red]✗[/red] {escape(problem)}"))
    verdict = "healthy" if not problems else "degraded" if status.exit_code() == EXIT_DEGRADED else "not healthy"
    checked = utc_z(status.checked_at, "seconds")
    parts.append(_line(f"status: {verdict} (exit {status.exit_code()}), checked {checked}"))
    return Group(*parts)


def _trace_orders(trace: OrderTrace) -> list[RenderableType]:
    trail = trace.orders
    if trail is None:
        return []
    committed = trail.committed_offset if trail.committed_offset is not None else _NONE
    first, end = trail.scanned
    where = f"{trail.topic}[{trail.partition}] ({trail.partitioner})"
    title = f"{where}: offsets {first}..{end} scanned, group committed {committed}"
    table = Table("offset", "timestamp", "committed")
    for r in trail.records:
        stamp = utc_z(r.timestamp, "milliseconds") if r.timestamp else _NONE
        table.add_row(str(r.offset), stamp, "yes" if r.committed else "no")
    return _titled(title, table) if trail.records else [Text(f"{title}: no record of this order")]


def _trace_dlq(trace: OrderTrace) -> list[RenderableType]:
    if trace.dead_letters is None:
        return []
    if not trace.dead_letters:
        return [_line("dlq: none")]
    table = Table("dlq", "reason", "failed at", "replays")
    for d in trace.dead_letters:
        failed = utc_z(d.failed_at, "milliseconds") if d.failed_at else _NONE
        table.add_row(f"{d.partition}@{d.offset}", plain(d.reason), failed, str(d.replay_count))
    return _titled("dead letters", table)


def _trace_stored(trace: OrderTrace) -> list[RenderableType]:
    pg = trace.postgres
    if pg is None:
        return []
    if not pg.stored or pg.stored_at is None:
        return [_line("postgres: not stored")]
    return [_line(f"postgres: stored at {utc_z(pg.stored_at, 'milliseconds')}, {pg.items} item(s),"
                  f" fingerprint {pg.fingerprint}")]  # fmt: skip


def _trace_event(trace: OrderTrace) -> list[RenderableType]:
    event = trace.event
    if event is None:
        return []
    where = [f"outbox id {e.event_id}" for e in event.pending]
    where += [f"{event.topic}[{e.partition}]@{e.offset} event-id {e.event_id or _NONE}" for e in event.published or ()]
    return [Text(f"event: {event.state}" + (f" ({'; '.join(where)})" if where else ""))]


def _trace_cache(trace: OrderTrace) -> list[RenderableType]:
    cache = trace.cache
    if cache is None:
        return []
    ttl = f", expires in {cache.ttl_seconds} s" if cache.ttl_seconds is not None else ""
    state = f"cached ({cache.key}{ttl})" if cache.cached else f"not cached ({cache.key})"
    return [Text(f"redis: {state}; memory cache: {MEMORY_CACHE_NOTE}")]


def trace_view(trace: OrderTrace) -> Group:
    """The order's records, dead letters, row, event and cache entry, then the verdict."""
    parts: list[RenderableType] = [
        *_trace_orders(trace),
        *_trace_dlq(trace),
        *_trace_stored(trace),
        *_trace_event(trace),
        *_trace_cache(trace),
    ]
    for section, why in trace.unread.items():
        parts.append(_line(f"[red]✗[/red] {section} not read: {escape(why)}"))
    parts.append(_line(f"trace {trace.order_uid}: {trace.verdict} (exit {trace.exit_code()})"))
    return Group(*parts)
