"""Citus: whether a database is a Citus coordinator, distributing the tables by ``order_uid``, and how each
table is distributed. Plain PostgreSQL never reaches past ``is_citus``.

All five tables are distributed by ``order_uid`` and co-located with ``orders``: an order, its delivery,
payment, items and event live on one shard, so the foreign keys hold on each shard and the store's statements
for one order touch one node. None of them fits a reference table (a copy on every node is for small tables
joined with many shards; these grow with the orders). ``schema_migrations`` stays a local table of the
coordinator: only the migrator reads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from ordersctl.adapters.pipeline_queries import StoredOrdersEstimate, rows_as

Conn = psycopg.Connection[Any]
DISTRIBUTION_COLUMN = "order_uid"
# The order matters: a table is distributed after the tables its foreign keys point to.
DISTRIBUTED_TABLES = ("orders", "deliveries", "payments", "items", "outbox")
ANCHOR = DISTRIBUTED_TABLES[0]
# Citus re-raises the error of a worker's COPY with the worker's message but not its SQLSTATE: XX000, "internal
# error" (multi_copy.c, ReportCopyError). Its message tells what the worker's SQLSTATE was.
_INTERNAL_ERROR = "XX000"
_REMOTE_DUPLICATE = re.compile(r"^duplicate key value violates unique constraint")
_REMOTE_DATA_ERROR = re.compile(
    r"violates (check|not-null|foreign key|exclusion) constraint|^invalid input|out of range|^value too long"
)


@dataclass(frozen=True)
class TableDistribution:
    """How one table is laid out: ``local`` (plain PostgreSQL, or not distributed), ``distributed`` or
    ``reference``, with its distribution column, co-location group and shard count."""

    table: str
    kind: str
    column: str | None = None
    colocation: int | None = None
    shards: int | None = None

    def describe(self) -> str:
        if self.kind != "distributed":
            return self.kind
        return f"distributed by {self.column}, {self.shards} shards, co-location group {self.colocation}"


def worker_copy_error(exc: BaseException) -> str | None:
    """What a worker's COPY error that Citus re-raised as XX000 was: ``duplicate`` (a unique violation: another
    writer stored the key first), ``data`` (the worker rejected a value), or None (anything else)."""
    if not isinstance(exc, psycopg.Error) or exc.sqlstate != _INTERNAL_ERROR:
        return None
    message = exc.diag.message_primary or str(exc).partition("\n")[0]
    if _REMOTE_DUPLICATE.search(message):
        return "duplicate"
    return "data" if _REMOTE_DATA_ERROR.search(message) else None


def is_citus(conn: Conn) -> bool:
    """The citus extension is installed in this database (then it is the coordinator ordersctl talks to)."""
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')").fetchone()
    return bool(row and row[0])


def distributed(conn: Conn) -> dict[str, TableDistribution]:
    """The Citus tables of this database, by name (empty on plain PostgreSQL)."""
    if not is_citus(conn):
        return {}
    rows = conn.execute(
        "SELECT table_name::text, citus_table_type, distribution_column, colocation_id, shard_count"
        " FROM citus_tables WHERE table_name::text = ANY(%s)",
        (list(DISTRIBUTED_TABLES),),
    ).fetchall()
    return {
        name: TableDistribution(
            name, str(kind), None if column in (None, "<none>") else str(column), int(coloc), int(shards)
        )
        for name, kind, column, coloc, shards in rows
    }


def layout(conn: Conn) -> list[TableDistribution]:
    """Every table of the schema that exists, with its distribution (``local`` when not a Citus table)."""
    found = distributed(conn)
    out = []
    for table in DISTRIBUTED_TABLES:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if exists and exists[0]:
            out.append(found.get(table, TableDistribution(table, "local")))
    return out


def distribute(conn: Conn) -> list[str]:
    """Distribute the tables not distributed yet, co-located with ``orders``; returns the tables it distributed
    (none when every one already is: idempotent). Runs in the caller's transaction."""
    if not is_citus(conn):
        return []
    done = []
    found = distributed(conn)
    for table in DISTRIBUTED_TABLES:
        if table in found:
            continue
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()
        if not exists or not exists[0]:
            continue
        colocate = "default" if table == ANCHOR else ANCHOR
        conn.execute(
            "SELECT create_distributed_table(%s, %s, colocate_with => %s)", (table, DISTRIBUTION_COLUMN, colocate)
        )
        done.append(table)
    return done


@dataclass(frozen=True)
class CitusNode:
    """One node of the cluster as the coordinator sees it."""

    role: str  # coordinator or worker
    host: str
    port: int
    up: bool  # the coordinator opens a connection to it
    shards: int  # shard placements it holds

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def citus_nodes(conn: Conn) -> list[CitusNode]:
    """Every node in the coordinator's metadata, coordinator first; a node it cannot reach is ``up=False``."""
    rows = conn.execute(
        "SELECT n.groupid = 0, n.nodename, n.nodeport, citus_check_connection_to_node(n.nodename, n.nodeport),"
        " (SELECT count(*) FROM pg_dist_placement p WHERE p.groupid = n.groupid)"
        " FROM pg_dist_node n WHERE n.noderole = 'primary' ORDER BY n.groupid, n.nodeport"
    ).fetchall()
    return [
        CitusNode("coordinator" if coord else "worker", str(host), int(port), bool(up), int(shards))
        for coord, host, port, up, shards in rows
    ]


def stored_orders_on_shards(conn: Conn) -> StoredOrdersEstimate:
    """The orders table's statistics summed over its shards (n_live_tup, n_tup_ins): on Citus the coordinator's
    table holds no rows, its shards on the workers do."""
    [summed] = rows_as(
        conn,
        StoredOrdersEstimate,
        "SELECT coalesce(sum(split_part(result, ',', 1)::bigint), 0)::bigint AS rows,"
        " coalesce(sum(split_part(result, ',', 2)::bigint), 0)::bigint AS inserted"
        " FROM run_command_on_shards('orders', $$SELECT coalesce(n_live_tup, 0) || ',' || coalesce(n_tup_ins, 0)"
        " FROM pg_stat_user_tables WHERE relid = '%s'::regclass$$) WHERE success",
    )  # an aggregate: always one row
    return summed
