"""``ordersctl produce``: realistic orders (and, on request, bad ones) to the orders topic."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.output import info, print_json, progress

if TYPE_CHECKING:
    from ordersctl.domain.generator import Message


def _ratio(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise typer.BadParameter("must be between 0 and 1")
    return value


def produce(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(min=1, max=100_000_000, help="How many messages to generate.")] = 1000,
    rate: Annotated[
        float | None, typer.Option(min=0.1, help="Messages per second (default: as fast as possible).")
    ] = None,
    invalid_ratio: Annotated[float, typer.Option(callback=_ratio, help="Share of poison messages, 0..1.")] = 0.0,
    duplicate_ratio: Annotated[float, typer.Option(callback=_ratio, help="Share of exact re-sends, 0..1.")] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed: the same seed gives the same messages.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Send these JSON lines instead of generating: each as it is, keyed by its order_uid "
            "when it is a readable order; blank lines are skipped.",
        ),
    ] = None,
    topic: Annotated[str | None, typer.Option(help="Target topic (default: the orders topic).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Generate realistic orders and send them to the orders topic with an idempotent producer.

    Example: ordersctl produce --count 1000 --invalid-ratio 0.05 --duplicate-ratio 0.01 --seed 42
    """
    from ordersctl.domain.generator import OrderGenerator  # Faker is slow to load: only for this command
    from ordersctl.pipeline.publish import messages_from_file, publish

    if invalid_ratio + duplicate_ratio > 1:
        raise typer.BadParameter("--invalid-ratio plus --duplicate-ratio must not exceed 1")
    rt = app_context(ctx).runtime
    target = topic or rt.settings.kafka.orders_topic
    if file is not None:
        with file.open("rb") as fh:
            total = sum(1 for line in fh if line.strip())
        source = messages_from_file(file)
    else:
        total = count
        source = OrderGenerator(seed).messages(count, invalid_ratio, duplicate_ratio)
    kinds: Counter[str] = Counter()

    def counted() -> Iterator[Message]:
        # Streamed, never held in memory: --count 10000000 must not need gigabytes.
        for message in source:
            kinds[message.kind] += 1
            yield message

    with progress() as bar:
        task = bar.add_task(f"produce -> {target}", total=total)
        result = publish(rt.producer("generator"), target, counted(), rate=rate,
                         on_sent=lambda n: bar.advance(task, n))  # fmt: skip
    summary = {"topic": target, "sent": result.sent, "failed": result.failed,
               "seconds": round(result.seconds, 3), "rate": round(result.rate, 1), "kinds": dict(kinds)}  # fmt: skip
    if as_json:
        print_json(summary)
    info(f"produce: sent {result.sent}, failed {result.failed}, {result.rate:.0f} msg/s; mix {dict(kinds)}")
    if result.failed:
        raise typer.Exit(1)
