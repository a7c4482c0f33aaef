"""A fresh start for a run: the prefix's topics deleted, the DSN's database empty.

On plain PostgreSQL the database is dropped and created again. On a Citus coordinator it is not: Citus 12.1 does
not propagate CREATE DATABASE, and a database there needs the extension on every node and the worker nodes
registered (``ORDERS_STACK_PG=citus scripts/stack up`` makes ``orders_chaos`` so). Its tables are dropped instead,
from the coordinator, which drops their shards on the workers; ``db migrate`` then distributes them anew."""

from __future__ import annotations

import time

import psycopg
from confluent_kafka.admin import AdminClient
from psycopg import sql


def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = [n for n in names if n in admin.list_topics(timeout=30).topics]
    for future in admin.delete_topics(existing, operation_timeout=30).values() if existing else []:
        future.result()
    deadline = time.monotonic() + 60
    while any(n in admin.list_topics(timeout=30).topics for n in existing) and time.monotonic() < deadline:
        time.sleep(0.5)  # deletion is asynchronous on the brokers; creating the same name too early fails


def recreate_database(dsn: str, pg: str) -> None:
    """The DSN's database, empty: dropped and created (plain, ha), or its own tables dropped (citus)."""
    if pg == "citus":
        _drop_tables(dsn)
        return
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    admin = psycopg.conninfo.make_conninfo(dsn, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))


def _drop_tables(dsn: str) -> None:
    """Every table of the public schema (ordersctl's, the migrations' record among them), in one statement: the
    foreign keys between them need no order. Citus's own views in that schema stay."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        extension = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'citus'").fetchone()
        if extension is None:
            raise SystemExit(f"chaos: --pg citus, but the database of {_where(dsn)} has no citus extension")
        names = [str(n) for (n,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        if names:
            tables = sql.SQL(", ").join(sql.Identifier("public", n) for n in names)
            conn.execute(sql.SQL("DROP TABLE {} CASCADE").format(tables))


def _where(dsn: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    return f"{params.get('host')}:{params.get('port')}/{params.get('dbname')}"
