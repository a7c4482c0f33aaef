"""``ordersctl consume``: the ingest pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.output import info, print_json

if TYPE_CHECKING:
    from ordersctl.pipeline.stats import WorkerStats
    from ordersctl.pipeline.supervisor import Supervisor


def consume(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes in the consumer group.")] = 1,
    batch_size: Annotated[int | None, typer.Option(min=1, max=100_000, help="Messages per batch.")] = None,
    max_items: Annotated[int | None, typer.Option(min=1, help="Maximum items per order (rule).")] = None,
    group: Annotated[str | None, typer.Option(help="Consumer group id.")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65_000, help="Prometheus metrics: worker i serves on PORT+i.")
    ] = None,
    health_port: Annotated[
        int | None,
        typer.Option(min=0, max=65_535, help="/livez and /readyz for probes, served by the supervisor (0: any port)."),
    ] = None,
    stop_when_idle: Annotated[
        float | None,
        typer.Option(min=0.5, help="Exit once no message came for this many seconds and nothing is left."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Final summary as JSON on stdout.")] = False,
) -> None:
    """Read orders from Kafka, validate, store in PostgreSQL, dead-letter poison, publish events.

    Offsets are committed only after the batch is stored and its dead letters are confirmed. Transient
    failures (PostgreSQL or Kafka down) are retried without limit; SIGTERM finishes cleanly. An error that
    cannot heal (credentials, access, a missing topic, a refused query) stops consume with exit 2 (access,
    topic) or 1 (query), and so does a worker in a crash loop (exit 1).

    Example: ordersctl consume --workers 4 --metrics-port 9400 --health-port 9399
    """
    from ordersctl.crash_loop import CrashLoopLimit
    from ordersctl.pipeline.options import WorkerOptions
    from ordersctl.pipeline.supervisor import Supervisor

    app = app_context(ctx)
    app.override("pipeline", batch_size=batch_size, max_items=max_items, health_port=health_port)
    app.override("kafka", group_id=group)
    settings = app.settings  # validates flags and config before any process starts
    p = settings.pipeline
    supervisor = Supervisor(
        app.config_file,
        app.overrides,
        workers,
        WorkerOptions(
            batch_size=settings.pipeline.batch_size, stop_when_idle=stop_when_idle, metrics_port=metrics_port
        ),
        progress=lambda s: info(f"consume: {_line(s, supervisor)}"),
        crash_loop=CrashLoopLimit(p.crash_loop_restarts, p.crash_loop_window_seconds),
        stall_seconds=p.stall_seconds,
        health_address=None if p.health_port is None else (p.metrics_host, p.health_port),
    )
    info(f"consume: {workers} worker(s) on {settings.kafka.orders_topic} (group {settings.kafka.group_id})")
    totals = supervisor.run()
    summary = _summary(totals, supervisor)
    if as_json:
        print_json(summary)
    info(f"consume: done. {_line(totals, supervisor)} restarts={supervisor.restarts}")
    error = supervisor.error()
    if error is not None:
        raise error  # the edge (cli/main.py) makes it one line and an exit code
    if supervisor.killed:
        raise typer.Exit(1)


def _line(totals: WorkerStats, supervisor: Supervisor) -> str:
    """The counts come from the workers' reports; a worker that died took its last few with it, so the line
    says it is an estimate then (PostgreSQL holds the truth: ordersctl status)."""
    if not supervisor.died:
        return totals.line()
    missing = "their counts since their last report are missing"
    return f"{totals.line()} (estimate: {supervisor.died} worker(s) died, {missing})"


def _summary(totals: WorkerStats, supervisor: Supervisor) -> dict[str, object]:
    counts = "estimate" if supervisor.died else "exact"
    return {**totals.as_dict(), "restarts": supervisor.restarts, "killed": supervisor.killed, "counts": counts}
