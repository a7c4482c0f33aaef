"""The Citus lane (`make test-citus`): ORDERS_TEST_CITUS_WORKERS names the worker nodes (host:port, comma
separated) of the coordinator that ORDERS_TEST_ADMIN_DSN points at. A test database then exists on every node,
with the extension, and the coordinator knows the workers: ``db migrate`` distributes its tables.

Citus 12.1 does not propagate CREATE DATABASE, and creating the extension and registering the nodes costs
seconds per database: each node gets a template database with all of it once (per process), and a test's
database is a copy of it on every node."""

from __future__ import annotations

import functools
import os
import time

import psycopg
from psycopg import sql

WORKERS = [w.strip() for w in os.environ.get("ORDERS_TEST_CITUS_WORKERS", "").split(",") if w.strip()]
TEMPLATE = "ordersctl_citus_template"
# Fewer shards than Citus's default (32) for the tests' databases: each shard is a table on a worker, made by
# every migration. The bench keeps the default.
TEST_SHARDS = 4


def on_citus() -> bool:
    return bool(WORKERS)


def _node_dsn(admin_dsn: str, node: str | None, dbname: str) -> str:
    if node is None:
        return psycopg.conninfo.make_conninfo(admin_dsn, dbname=dbname)
    host, port = node.rsplit(":", 1)
    return psycopg.conninfo.make_conninfo(admin_dsn, host=host, port=port, dbname=dbname)


def _on_every_node(admin_dsn: str, workers: tuple[str, ...], statement: sql.Composed) -> None:
    for node in (*workers, None):
        with psycopg.connect(_node_dsn(admin_dsn, node, "postgres"), autocommit=True) as admin:
            for attempt in range(50):  # a copy of the template waits out a session still leaving it
                try:
                    admin.execute(statement)
                    break
                except psycopg.errors.ObjectInUse:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)


@functools.cache
def _template(admin_dsn: str, workers: tuple[str, ...]) -> str:
    """The template on every node, made anew once per process: the extension, and on the coordinator the nodes."""
    name = sql.Identifier(TEMPLATE)
    _on_every_node(admin_dsn, workers, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
    _on_every_node(admin_dsn, workers, sql.SQL("CREATE DATABASE {}").format(name))
    for node in workers:
        with psycopg.connect(_node_dsn(admin_dsn, node, TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
    coordinator = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    with psycopg.connect(_node_dsn(admin_dsn, None, TEMPLATE), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citus")
        conn.execute(
            "SELECT citus_set_coordinator_host(%s, %s)",
            (str(coordinator.get("host") or "127.0.0.1"), int(str(coordinator.get("port") or 5432))),
        )
        for node in workers:
            host, port = node.rsplit(":", 1)
            conn.execute("SELECT citus_add_node(%s, %s)", (host, int(port)))
    # No one may stay connected to a template (Citus's maintenance daemon would): closed, and its sessions ended.
    _on_every_node(admin_dsn, workers, sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(name))
    terminate = sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}")
    _on_every_node(admin_dsn, workers, terminate.format(sql.Literal(TEMPLATE)))
    return TEMPLATE


def create_database(admin_dsn: str, name: str, workers: list[str] = WORKERS, shards: int | None = TEST_SHARDS) -> None:
    """The database on every node, a copy of the template; ``shards``: the shard count its tables get."""
    template = _template(admin_dsn, tuple(workers))
    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    _on_every_node(admin_dsn, tuple(workers), create)
    if shards is not None:
        with psycopg.connect(_node_dsn(admin_dsn, None, "postgres"), autocommit=True) as admin:
            admin.execute(
                sql.SQL("ALTER DATABASE {} SET citus.shard_count = {}").format(
                    sql.Identifier(name), sql.Literal(shards)
                )
            )


def drop_database(admin_dsn: str, name: str, workers: list[str] = WORKERS) -> None:
    """The database off every node."""
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    _on_every_node(admin_dsn, tuple(workers), drop)
