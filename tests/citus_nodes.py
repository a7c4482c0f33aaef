"""The Citus lane (`make test-citus`): ORDERS_TEST_CITUS_WORKERS names the worker nodes (host:port, comma
separated) of the coordinator that ORDERS_TEST_ADMIN_DSN points at. A test database then exists on every node,
with the extension, and the coordinator knows the workers: ``db migrate`` distributes its tables."""

from __future__ import annotations

import os

import psycopg
from psycopg import sql

WORKERS = [w.strip() for w in os.environ.get("ORDERS_TEST_CITUS_WORKERS", "").split(",") if w.strip()]


def on_citus() -> bool:
    return bool(WORKERS)


def _node_dsn(admin_dsn: str, node: str, dbname: str) -> str:
    host, port = node.rsplit(":", 1)
    return psycopg.conninfo.make_conninfo(admin_dsn, host=host, port=port, dbname=dbname)


def create_database(admin_dsn: str, name: str, workers: list[str] = WORKERS) -> None:
    """The database (created on the coordinator already) on the workers, the extension in each, the workers
    registered on the coordinator. (Citus 12.1 does not propagate CREATE DATABASE.)"""
    coordinator = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    for node in workers:
        with psycopg.connect(_node_dsn(admin_dsn, node, "postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(_node_dsn(admin_dsn, node, name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION citus")
    with psycopg.connect(psycopg.conninfo.make_conninfo(admin_dsn, dbname=name), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citus")
        conn.execute(
            "SELECT citus_set_coordinator_host(%s, %s)",
            (str(coordinator.get("host") or "127.0.0.1"), int(str(coordinator.get("port") or 5432))),
        )
        for node in workers:
            host, port = node.rsplit(":", 1)
            conn.execute("SELECT citus_add_node(%s, %s)", (host, int(port)))


def drop_database(admin_dsn: str, name: str, workers: list[str] = WORKERS) -> None:
    """The test database off the workers (the coordinator's copy is dropped by the caller)."""
    for node in workers:
        with psycopg.connect(_node_dsn(admin_dsn, node, "postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
