"""``ordersctl dlq``: look into the dead-letter topic and send messages back."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.dlq.format import DEFAULT_REPLAY_LIMIT
from ordersctl.output import info, out_console, print_json, print_json_line, progress

if TYPE_CHECKING:
    from ordersctl.dlq.reader import DlqReader
    from ordersctl.dlq.records import DeadLetterRecord
    from ordersctl.dlq.replay import ReplayResult
    from ordersctl.runtime import Runtime

app = typer.Typer(
    help="Look into the dead-letter topic and send messages back.\n\n"
    "Example: ordersctl dlq inspect --reason conflict  |  ordersctl dlq replay --reason too_many_items --dry-run",
    no_args_is_help=True,
)

Reason = Annotated[str | None, typer.Option(help="Only this reason code (e.g. conflict, too_many_items).")]
Partition = Annotated[int | None, typer.Option(min=0, help="Only this DLQ partition.")]


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    from ordersctl.dlq.reader import parse_since

    try:
        return parse_since(value)
    except ValueError:
        raise typer.BadParameter("use an RFC 3339 time or a duration like 30m, 2h, 7d", param_hint="--since") from None


def _reader(rt: Runtime, group: str) -> DlqReader:
    from ordersctl.adapters.kafka_scan import READER_SETTINGS
    from ordersctl.dlq.reader import DlqReader

    consumer = rt.consumer(group_id=group, **{"enable.auto.commit": False, **READER_SETTINGS})
    return DlqReader(consumer, rt.settings.kafka.dlq_topic)


def _missing(topic: str) -> typer.Exit:
    info(f"dlq: topic {topic} does not exist (create it with: ordersctl topics create --dlq)")
    return typer.Exit(1)


@app.command()
def inspect(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many (the summary counts all).")] = 50,
    reason: Reason = None,
    since: Annotated[str | None, typer.Option(help="From this time: RFC 3339 or 30m / 2h / 7d ago.")] = None,
    partition: Partition = None,
    offset: Annotated[int | None, typer.Option(min=0, help="With --partition: start at this DLQ offset.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per dead letter on stdout.")] = False,
    payload: Annotated[
        bool, typer.Option("--payload", help="Show each original message (personal data); with --json, add it.")
    ] = False,
) -> None:
    """Read the DLQ without joining a group or committing: a table of dead letters, then a summary.

    Example: ordersctl dlq inspect --reason schema_violation --since 2h --payload
    """
    from ordersctl.dlq.formatting import Summary, dead_letter_table, print_payloads
    from ordersctl.dlq.reader import DlqMissing, Selection

    if offset is not None and partition is None:
        raise typer.BadParameter("--offset needs --partition", param_hint="--offset")
    rt = app_context(ctx).runtime
    topic = rt.settings.kafka.dlq_topic
    reader = _reader(rt, f"{rt.settings.kafka.group_id}.dlq-inspect")
    sel = Selection(reason=reason, partition=partition, from_offset=offset, since=_since(since))
    try:
        bounds = reader.bounds(sel)
    except DlqMissing:
        raise _missing(topic) from None
    summary = Summary()
    shown: list[DeadLetterRecord] = []
    for record in filter(sel.matches, reader.read(bounds)):
        summary.add(record)
        if len(shown) < limit:
            shown.append(record)
            if as_json:
                print_json_line(record.as_json(payload=payload))
    if not summary.count:
        info(f"dlq: no dead letters in {topic}" + (" matching the filters" if reason or since or partition else ""))
        return
    if not as_json:
        out_console.print(dead_letter_table(shown))
        if payload:
            print_payloads(shown)
    info(summary.line(len(shown)))


@app.command()
def replay(
    ctx: typer.Context,
    reason: Reason = None,
    partition: Partition = None,
    from_offset: Annotated[int | None, typer.Option(min=0, help="First DLQ offset (with --partition).")] = None,
    to_offset: Annotated[int | None, typer.Option(min=0, help="Last DLQ offset, inclusive (with --partition).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Send at most this many (counted as sent).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be sent; send nothing.")] = False,
    to_topic: Annotated[str | None, typer.Option(help="Send here instead of each message's original topic.")] = None,
    rate: Annotated[float | None, typer.Option(min=0.1, help="Messages per second.")] = None,
    replay_limit: Annotated[
        int, typer.Option(min=1, help="Skip messages replayed this many times already.")
    ] = DEFAULT_REPLAY_LIMIT,
    group: Annotated[str | None, typer.Option(help="Progress group (default: one per --reason/--to-topic).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Summary as JSON on stdout.")] = False,
) -> None:
    """Re-publish dead letters to their original topic with key, value and headers, plus a replay count.

    Progress is committed in a dedicated consumer group after each confirmed batch: the same replay run twice
    sends nothing twice, and a second run with --limit N sends the next N. A message replayed --replay-limit
    times is skipped ("skipped: replay limit").

    Example: ordersctl dlq replay --reason too_many_items --dry-run   (then without --dry-run)
    """
    from ordersctl.dlq.reader import Selection
    from ordersctl.dlq.replay import Replayer, ReplayRequest, replay_group

    if (from_offset is not None or to_offset is not None) and partition is None:
        raise typer.BadParameter("--from-offset/--to-offset need --partition", param_hint="--partition")
    rt = app_context(ctx).runtime
    k = rt.settings.kafka
    req = ReplayRequest(Selection(reason, partition, from_offset, to_offset), to_topic, limit, dry_run)
    progress_group = group or replay_group(k.group_id, req.selection, to_topic)
    reader = _reader(rt, f"{k.group_id}.dlq-inspect")
    producer = None if dry_run else rt.producer("replay")
    replayer = Replayer(reader, rt.consumer(group_id=progress_group), producer, replay_limit=replay_limit, rate=rate)
    parts = _replay_partitions(rt, reader, partition, to_topic)

    def would_send(r: DeadLetterRecord) -> None:
        target = to_topic or r.original_topic or "?"
        info(f"would send {r.partition}@{r.offset} ({r.reason}, order_uid {r.order_uid or '-'}) -> {target}")

    total = sum(end - start for start, end in reader.bounds(req.selection, replayer.committed(parts)).values())
    with progress() as bar:
        task = bar.add_task("dlq replay" + (" (dry run)" if dry_run else ""), total=total)
        result = replayer.run(req, on_progress=lambda n: bar.advance(task, n), on_would_send=would_send)
    _report(result, progress_group, dry_run=dry_run, as_json=as_json)


def _replay_partitions(rt: Runtime, reader: DlqReader, partition: int | None, to_topic: str | None) -> list[int]:
    """The DLQ partitions to replay from; exit 1 with one line when the DLQ or the target topic is missing."""
    from ordersctl.adapters.kafka_topics import TopicAdmin
    from ordersctl.dlq.reader import DlqMissing

    k = rt.settings.kafka
    try:
        parts = [partition] if partition is not None else reader.partitions()
    except DlqMissing:
        raise _missing(k.dlq_topic) from None
    if to_topic is not None and to_topic not in TopicAdmin(rt.kafka_admin, k).partitions():
        # Without this, every message would wait out its delivery timeout for a topic that never appears.
        info(f"dlq replay: topic {to_topic} does not exist (create it first)")
        raise typer.Exit(1)
    return parts


def _report(result: ReplayResult, progress_group: str, *, dry_run: bool, as_json: bool) -> None:
    summary = {"replayed": result.replayed, "would_send": result.would_send, "skipped": dict(result.skipped),
               "failed": result.failed, "group": progress_group, "dry_run": dry_run}  # fmt: skip
    if as_json:
        print_json(summary)
    skipped = ", ".join(f"{v} skipped: {k}" for k, v in result.skipped.items()) or "none skipped"
    verb = f"would replay {result.would_send}" if dry_run else f"replayed {result.replayed}"
    info(f"dlq replay: {verb}; {skipped}; {result.failed} failed (progress group {progress_group})")
    if result.failed:
        raise typer.Exit(1)
