"""Shared set-up for benchmarks: a throwaway database and unique topics on the local stack."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from ordersctl.adapters.migrations import Migrator, default_directory, load
from ordersctl.config import Settings, load_settings, settings_env

ADMIN_DSN = os.environ.get("ORDERS_BENCH_ADMIN_DSN", "postgresql://ordersctl:ordersctl@127.0.0.1:54329/orders_test")


def ordersctl(*args: str) -> list[str]:
    """An ordersctl command line: the console script, as it is run (a spawned worker starts differently under
    ``python -m``: cli/entry.py)."""
    return [str(Path(sys.executable).with_name("ordersctl")), *args]


@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            Migrator(conn, load(default_directory())).apply()
        yield dsn
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def bench_settings(dsn: str, prefix: str, **sections: dict[str, object]) -> Settings:
    overrides: dict[str, dict[str, object]] = {
        "postgres": {"dsn": dsn},
        "kafka": {
            "orders_topic": f"{prefix}.orders",
            "dlq_topic": f"{prefix}.orders.dlq",
            "events_topic": f"{prefix}.orders.events",
            "group_id": f"{prefix}-group",
        },
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(overrides=overrides)


def env_for(settings: Settings) -> dict[str, str]:
    env = {key: val for key, val in os.environ.items() if not key.startswith("ORDERS_")}
    return env | settings_env(settings) | {"ORDERS_LOG__LEVEL": "WARNING", "ORDERS_LOG__FORMAT": "json"}


def postmaster_pid(dsn: str) -> int:
    """The PostgreSQL server's main process: the parent of any backend, so the cluster this DSN reaches."""
    from bench.proc import parent_of

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return parent_of(int(row[0]))  # while the backend lives: once the connection closes, it exits
