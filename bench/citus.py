"""The ingest benchmark on the Citus stack beside the single node, in one run (``bench/ingest.py --citus``):

- ``consume --workers 2`` over the same orders into the plain stack's PostgreSQL and into the Citus cluster
  (ORDERS_STACK_PG=citus scripts/stack up): orders/s and PostgreSQL CPU per order, on Citus the coordinator and
  each worker node apart; then whether every order is stored and every event was published;
- grouping by shard: the same orders stored by the store's writes in batches of --batch-size as they come (a batch
  spans every shard: one distributed transaction, two-phase commit over the workers), split per worker node,
  and split per shard (each part its own transaction, on one node or one shard).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from bench.common import bench_settings, env_for, fresh_database, postmaster_pid
from bench.measure import run_measured
from bench.proc import tree_cpu
from bench.report import figures_dict
from ordersctl.adapters.migrations import Migrator, default_directory, load
from ordersctl.adapters.order_store.writes import Rowed
from ordersctl.config import Settings, load_settings
from ordersctl.domain.rows import to_rows
from ordersctl.domain.rules import decode_order
from ordersctl.runtime import Runtime
from tests.citus_nodes import create_database, drop_database

COORDINATOR = os.environ.get("ORDERS_BENCH_CITUS_DSN", "postgresql://ordersctl:ordersctl@127.0.0.1:55431/orders_test")
WORKERS = os.environ.get("ORDERS_BENCH_CITUS_WORKERS", "127.0.0.1:55432,127.0.0.1:55433").split(",")


@contextmanager
def citus_database() -> Iterator[str]:
    """A fresh database on every node of the Citus stack, migrated (hence distributed); yields its DSN."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    dsn = psycopg.conninfo.make_conninfo(COORDINATOR, dbname=name)
    try:
        create_database(COORDINATOR, name, WORKERS, shards=None)  # Citus's default shard count
        with psycopg.connect(dsn, autocommit=True) as conn:
            Migrator(conn, load(default_directory())).apply()
        yield dsn
    finally:
        drop_database(COORDINATOR, name, WORKERS)


def _worker_dsn(node: str) -> str:
    host, port = node.rsplit(":", 1)
    return psycopg.conninfo.make_conninfo(COORDINATOR, host=host, port=port, dbname="postgres")


def _published_and_pending(dsn: str, expected: int) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        stored = conn.execute("SELECT count(*) FROM orders").fetchone()
        pending = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert stored is not None and pending is not None
    return {"stored": int(stored[0]), "events_pending": int(pending[0]), "expected": expected}


def ingest(args: argparse.Namespace, produce: Callable[[Settings], int]) -> list[dict[str, Any]]:
    """``consume --workers 2`` into the single node, then into the Citus cluster (same orders, fresh topics)."""
    from bench.ingest import consume_command, delete_topics, measured, progress

    out = []
    targets: list[tuple[str, Callable[[], Any]]] = [("single node", fresh_database), ("citus", citus_database)]
    for name, database in targets:
        progress(f"{name}: consume --workers 2 ...")
        prefix = f"bench{uuid.uuid4().hex[:8]}"
        with database() as dsn:
            settings = bench_settings(dsn, prefix, pipeline={"batch_size": args.batch_size})
            count = produce(settings)
            workers = {node: postmaster_pid(_worker_dsn(node)) for node in WORKERS} if name == "citus" else {}
            before = {node: tree_cpu(pid) for node, pid in workers.items()}
            try:
                figures = measured(run_measured(f"{name}: consume --workers 2", consume_command(2),
                                                env_for(settings), dsn, count, "supervisor"))  # fmt: skip
            finally:
                delete_topics(settings)
            time.sleep(1)  # the relay's last page
            result = figures_dict(figures) | {"outcome": _published_and_pending(dsn, count)}
            if workers:
                per = {node: round((tree_cpu(pid) - before[node]) * 1e6 / count, 1) for node, pid in workers.items()}
                result["cpu_us_per_order"]["postgres_coordinator"] = result["cpu_us_per_order"].pop("postgres")
                result["cpu_us_per_order"]["postgres_workers"] = per
                result["cpu_us_per_order"]["postgres_all_nodes"] = round(
                    result["cpu_us_per_order"]["postgres_coordinator"] + sum(per.values()), 1
                )
            out.append(result)
    return out


def _placement(conn: psycopg.Connection[Any], uids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """order_uid -> (shard id, node) as Citus places it."""
    rows = conn.execute(
        "SELECT u, s, p.nodename || ':' || p.nodeport FROM unnest(%s::text[]) u,"
        " LATERAL get_shard_id_for_distribution_column('orders', u) s"
        " JOIN pg_dist_shard_placement p ON p.shardid = s",
        (list(uids),),
    ).fetchall()
    return {str(u): (int(s), str(node)) for u, s, node in rows}


def grouping(values: list[bytes], batch_size: int) -> list[dict[str, Any]]:
    """Store the same orders three ways (twice each) on a fresh Citus database each; wall time, CPU of every node."""
    from bench.ingest import progress

    orders = [Rowed(to_rows(decode_order(v), v)) for v in values]
    writes = Runtime(load_settings()).store.writes  # works on each round's own connection
    results = []
    # Twice, the second round in the other order: the first run of a session warms the nodes' caches.
    ways = ("as they come", "per worker node", "per shard")
    for how in (*ways, *reversed(ways)):
        progress(f"grouping: batches of {batch_size} stored {how} ...")
        with citus_database() as dsn, psycopg.connect(dsn, autocommit=True) as conn:
            where = _placement(conn, [o.rows.order_uid for o in orders])
            nodes = {"coordinator": postmaster_pid(dsn)} | {n: postmaster_pid(_worker_dsn(n)) for n in WORKERS}
            before = {n: tree_cpu(pid) for n, pid in nodes.items()}
            transactions = 0
            started = time.perf_counter()
            for i in range(0, len(orders), batch_size):
                batch = orders[i : i + batch_size]
                parts: dict[object, list[Rowed]] = defaultdict(list)
                for o in batch:
                    shard, node = where[o.rows.order_uid]
                    parts[{"as they come": 0, "per worker node": node, "per shard": shard}[how]].append(o)
                for part in parts.values():
                    writes.save(conn, part)
                    transactions += 1
            seconds = time.perf_counter() - started
            cpu = {n: round((tree_cpu(pid) - before[n]) * 1e6 / len(orders), 1) for n, pid in nodes.items()}
        results.append({
            "grouping": how, "orders": len(orders), "batch_size": batch_size, "transactions": transactions,
            "orders_per_s": round(len(orders) / seconds), "postgres_cpu_us_per_order": cpu,
            "postgres_cpu_us_per_order_all_nodes": round(sum(cpu.values()), 1),
        })  # fmt: skip
        progress(f"  {how}: {results[-1]['orders_per_s']} orders/s, CPU µs per order {cpu}")
    return results


def run(
    args: argparse.Namespace, profile: str, values: list[bytes], produce: Callable[[Settings], int]
) -> dict[str, Any]:
    """Both parts; ``produce`` puts the orders on a run's fresh topics and returns how many."""
    return {
        "postgres_profile": profile,
        "durable": profile == "durable",
        "orders": len(values),
        "citus_workers": WORKERS,
        "consume": ingest(args, produce),
        "grouping_by_shard": grouping(values, args.batch_size),
    }
