"""``ordersctl topics``: Kafka topics."""

from __future__ import annotations

from typing import Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.errors import TopicError
from ordersctl.output import info, out_console, print_json

app = typer.Typer(help="Kafka topics.\n\nExample: ordersctl topics create --dlq --partitions 4", no_args_is_help=True)


@app.command()
def create(
    ctx: typer.Context,
    dlq: Annotated[bool, typer.Option("--dlq", help="Also create the dead-letter topic.")] = False,
    partitions: Annotated[int, typer.Option(min=1, max=10_000, help="Partitions of the orders topic.")] = 4,
    replication_factor: Annotated[
        int | None,
        typer.Option(min=1, max=16, help="Replicas of each partition; without it, min(3, brokers in the cluster)."),
    ] = None,
) -> None:
    """Create the orders and events topics (and with --dlq the DLQ); existing ones are reported "exists".

    New topics get min(3, brokers) replicas unless --replication-factor says; more than the brokers is an error.

    Example: ordersctl topics create --dlq --partitions 4 --replication-factor 3
    """
    from ordersctl.adapters.kafka_topics import TopicAdmin

    rt = app_context(ctx).runtime
    k = rt.settings.kafka
    admin = TopicAdmin(rt.kafka_admin, k)
    rf = admin.replication_factor(replication_factor)
    if replication_factor is None:
        brokers = admin.brokers()
        info(
            f"replication factor {rf}: min(3, brokers), and the cluster has {brokers} (--replication-factor overrides)"
        )
    wanted = [k.orders_topic, k.events_topic] + ([k.dlq_topic] if dlq else [])
    problems = []
    for name in wanted:
        count = partitions
        if name == k.dlq_topic:
            # A dead letter keeps its original partition, so the DLQ needs at least the orders topic's count.
            count = max(partitions, admin.partitions().get(k.orders_topic, partitions))
        try:
            config = admin.dlq_config(k.orders_topic) if name == k.dlq_topic else None
            result = admin.ensure(name, count, rf, config)
        except TopicError as exc:
            problems.append(str(exc))
            result = "mismatch"
        info(f"{name:<24} {result}")
    if problems:
        for p in problems:
            info(p, style="red")
        raise typer.Exit(1)


@app.command("list")
def list_topics(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Show topics, partitions and end offsets.

    Example: ordersctl topics list --json
    """
    from rich.table import Table

    from ordersctl.adapters.kafka_topics import TopicAdmin

    rt = app_context(ctx).runtime
    admin = TopicAdmin(rt.kafka_admin, rt.settings.kafka)
    consumer = rt.consumer(group_id="ordersctl-admin")
    try:
        topics = admin.describe(consumer)
    finally:
        consumer.close()
    if as_json:
        print_json([{"topic": t.name, "partitions": t.partitions, "end_offsets": t.end_offsets} for t in topics])
        return
    table = Table("topic", "partitions", "end offsets", "messages")
    for t in topics:
        offsets = " ".join(f"{p}:{o}" for p, o in sorted(t.end_offsets.items()))
        table.add_row(t.name, str(t.partitions), offsets, str(t.messages))
    out_console.print(table)
