"""Ingest benchmark: CPU per stored order on each side, and orders/s end to end (Kafka -> validate ->
PostgreSQL -> commit, events relayed) with 1 and 2 workers, next to two references measured in the same run:
- the ceiling: psql \\copy of the identical rows into the identical schema (an empty, migrated database; all
  five tables, one transaction);
- the per-order design (bench/per_order.py): one message at a time, INSERTs in one transaction, commit, then
  a synchronous offset commit; on the first --per-order-orders of the same orders, in a database of its own.
Last, one worker drains a backlog of --backlog orders (1,000,000 by default; generated and produced as a
stream, so the bench itself stays small): the peak RSS of a worker with a full topic ahead of it.

CPU time, from /proc, is the headline: on a shared machine it is far steadier than orders/s. Per stored
order and per side: the consuming processes (supervisor and workers), every PostgreSQL process, the Kafka
broker; bench/measure.py says exactly what each figure holds. The peak RSS of every worker is reported too.

    python bench/ingest.py [--orders 100000] [--workers 1,2] [--backlog 1000000] [--json]
    python bench/ingest.py --latency [--rate 200,2000,5000] [--seconds 30] [--cold 3]
        (produce -> "order saved" event latency at each rate, and of a lone order after --idle seconds)
    python bench/ingest.py --citus --orders 20000 --json    (the Citus stack beside the single node: bench/citus.py)

--json prints one JSON document on stdout; the table (without --json) goes to stdout too; progress to stderr.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import report
from bench.common import bench_settings, env_for, fresh_database, ordersctl
from bench.measure import ROOT, Figures, run_measured
from ordersctl.adapters.kafka_topics import TopicAdmin
from ordersctl.adapters.order_store.outbox import event_json
from ordersctl.config import Settings
from ordersctl.domain.generator import Message, OrderGenerator
from ordersctl.domain.rows import DELIVERY_COLUMNS, ITEM_COLUMNS, ORDER_COLUMNS, PAYMENT_COLUMNS, to_rows
from ordersctl.domain.rules import decode_order
from ordersctl.pipeline.publish import publish
from ordersctl.runtime import Runtime


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def measured(figures: Figures) -> Figures:
    """Say what a run measured as soon as it is done: a later run that fails must not take it along."""
    f = figures
    us = {side: round(cpu * 1e6 / f.orders) for side, cpu in
          (("client", f.client_cpu), ("postgres", f.postgres_cpu), ("broker", f.broker_cpu or 0.0))}  # fmt: skip
    progress(f"  {f.name}: {f.orders / f.seconds:.0f} orders/s, CPU µs per order {us}")
    return figures


def pg_profile() -> str:
    """The running PostgreSQL's profile as the stack names it: durable, fast, custom (or unknown)."""
    done = subprocess.run([str(ROOT / "scripts" / "stack"), "pg-profile"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def write_csvs(values: list[bytes], folder: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """The exact rows the pipeline writes, as CSV files for psql \\copy."""
    files = {
        "orders": ORDER_COLUMNS, "deliveries": DELIVERY_COLUMNS, "payments": PAYMENT_COLUMNS,
        "items": ITEM_COLUMNS, "outbox": ("order_uid", "payload"),
    }  # fmt: skip
    handles = {name: (folder / f"{name}.csv").open("w", newline="") for name in files}
    # Quoted strings: in CSV an unquoted empty field is NULL, a quoted one is the empty string.
    writers = {name: csv.writer(h, quoting=csv.QUOTE_NONNUMERIC) for name, h in handles.items()}
    for raw in values:
        order = decode_order(raw)
        rows = to_rows(order, raw)
        head = {**rows.order._asdict(), "content_hash": "\\x" + rows.content_hash.hex()}.values()
        writers["orders"].writerow([v.isoformat() if hasattr(v, "isoformat") else v for v in head])
        writers["deliveries"].writerow(rows.delivery)
        writers["payments"].writerow(rows.payment)
        writers["items"].writerows(rows.items)
        writers["outbox"].writerow([order.order_uid, event_json(rows)])
    for h in handles.values():
        h.close()
    return {name: (folder / f"{name}.csv", cols) for name, cols in files.items()}


def ceiling(values: list[bytes]) -> Figures:
    with tempfile.TemporaryDirectory() as tmp, fresh_database() as dsn:
        files = write_csvs(values, Path(tmp))
        script = ["BEGIN;"]
        for table in ("orders", "deliveries", "payments", "items", "outbox"):
            path, cols = files[table]
            script.append(f"\\copy {table} ({', '.join(cols)}) FROM '{path}' WITH (FORMAT csv)")
        script.append("COMMIT;")
        (Path(tmp) / "copy.sql").write_text("\n".join(script))
        cmd = ["psql", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(Path(tmp) / "copy.sql"), dsn]
        return run_measured("psql \\copy (ceiling)", cmd, dict(os.environ), dsn, len(values), "psql")


def create_topics(settings: Settings, partitions: int) -> None:
    """The run's orders, dead-letter and events topics."""
    rt = Runtime(settings)
    try:
        admin = TopicAdmin(rt.kafka_admin, settings.kafka)
        for name in (settings.kafka.orders_topic, settings.kafka.dlq_topic, settings.kafka.events_topic):
            admin.ensure(name, partitions, 1)
    finally:
        rt.close()


def produce(settings: Settings, messages: Iterable[Message], partitions: int) -> int:
    """Produce ``messages`` to fresh topics; returns how many were confirmed (all of them, or it fails)."""
    create_topics(settings, partitions)
    rt = Runtime(settings)
    try:
        result = publish(rt.producer(), settings.kafka.orders_topic, messages)
        assert result.failed == 0
        return result.sent
    finally:
        rt.close()


def keyed(values: list[bytes]) -> Iterator[Message]:
    return (Message(decode_order(v).order_uid.encode(), v, "valid", "") for v in values)


def consume_command(workers: int) -> list[str]:
    """``ordersctl consume`` with ``workers`` workers, ending once idle for 3 s."""
    return ordersctl("consume", "--workers", str(workers), "--stop-when-idle", "3")


def consumer_run(
    name: str, command: list[str], messages: Iterable[Message], args: argparse.Namespace, root_label: str
) -> Figures:
    """Produce ``messages`` (valid orders) to fresh topics, then run ``command`` (a consumer that stops when
    idle) over them."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    with fresh_database() as dsn:
        settings = bench_settings(dsn, prefix, pipeline={"batch_size": args.batch_size})
        count = produce(settings, messages, args.partitions)
        try:
            return run_measured(name, command, env_for(settings), dsn, count, root_label)
        finally:
            delete_topics(settings)


def delete_topics(settings: Settings) -> None:
    """A run leaves its orders in Kafka; without this, each run makes the broker bigger and slower to start."""
    k = settings.kafka
    rt = Runtime(settings)
    try:
        for future in rt.kafka_admin.delete_topics([k.orders_topic, k.dlq_topic, k.events_topic]).values():
            future.result(timeout=30)
    finally:
        rt.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (latency mode: the last)")
    # The per-order design commits every order on its own, so it is slow: it runs on the first N orders.
    parser.add_argument("--per-order-orders", type=int, default=5_000, help="orders for it (0: skip it)")
    parser.add_argument("--backlog", type=int, default=1_000_000, help="orders one worker drains last (0: skip)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of the table")
    parser.add_argument("--latency", action="store_true", help="latency mode: see bench/latency.py")
    parser.add_argument("--rate", default="200,2000,5000", help="latency mode: orders/s produced, rates in turn")
    parser.add_argument("--seconds", type=float, default=30.0, help="latency mode: how long to produce each rate")
    parser.add_argument("--cold", type=int, default=3, help="latency mode: lone orders, each after --idle seconds")
    parser.add_argument("--idle", type=float, default=10.0, help="latency mode: idleness before a lone order")
    parser.add_argument("--citus", action="store_true", help="the Citus stack beside the single node: bench/citus.py")
    args = parser.parse_args()
    profile = pg_profile()
    progress(f"PostgreSQL profile: {profile}")
    if args.latency:
        from bench import latency

        report.emit(latency.run(args, profile), args.json, latency.table)
        return
    progress(f"generating {args.orders} orders ...")
    values = [m.value for m in OrderGenerator(seed=2024).messages(args.orders)]
    if args.citus:
        from bench import citus

        on_citus = citus.run(args, profile, values, lambda settings: produce(settings, keyed(values), args.partitions))
        report.emit(on_citus, True, report.ingest_table)  # JSON only: its figures do not fit the table
        return
    items = sum(len(decode_order(v).items) for v in values[:2000]) / min(2000, len(values))
    # The ceiling is noisy on a small machine: the faster of two runs (the stricter ratio).
    progress("ceiling: psql \\copy, twice ...")
    copy = min(measured(ceiling(values)), measured(ceiling(values)), key=lambda f: f.seconds)
    runs: list[Figures] = []
    for workers in (int(w) for w in args.workers.split(",")):
        progress(f"consume --workers {workers} ...")
        command = consume_command(workers)
        runs.append(measured(consumer_run(f"consume --workers {workers}", command, keyed(values), args, "supervisor")))
    baseline = None
    if args.per_order_orders:
        subset = values[: args.per_order_orders]
        progress(f"per-order design on the first {len(subset)} orders ...")
        command = [sys.executable, str(ROOT / "bench" / "per_order.py"), "--stop-when-idle", "3"]
        baseline = measured(consumer_run("per-order design", command, keyed(subset), args, "per_order.py"))
    backlog = None
    if args.backlog:
        progress(f"consume --workers 1 over a backlog of {args.backlog} orders (generated as they are produced) ...")
        command = consume_command(1)
        stream = OrderGenerator(seed=4096).messages(args.backlog)
        name = f"{args.backlog:,} backlog, 1 worker"
        backlog = measured(consumer_run(name, command, stream, args, "supervisor"))
    result: dict[str, Any] = report.ingest_result(profile, args.orders, items, copy, runs, baseline, backlog)
    report.emit(result, args.json, report.ingest_table)


if __name__ == "__main__":
    main()
