"""Migrations against a real, empty PostgreSQL database."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors

from ordersctl.adapters.migrations import Migrator, default_directory, load

pytestmark = pytest.mark.integration


def _migrator(conn: psycopg.Connection) -> Migrator:
    return Migrator(conn, load(default_directory()))


def _order_row(uid: str = "o1") -> dict[str, object]:
    return {
        "order_uid": uid,
        "track_number": "T",
        "entry": "E",
        "locale": "en",
        "internal_signature": "",
        "customer_id": "c",
        "delivery_service": "d",
        "shardkey": "1",
        "sm_id": 1,
        "date_created": datetime(2021, 1, 1, tzinfo=UTC),
        "oof_shard": "1",
        "content_hash": b"\x00" * 32,
    }


def _insert_order(conn: psycopg.Connection, **changes: object) -> None:
    row = {**_order_row(), **changes}
    cols = ", ".join(row)
    conn.execute(f"INSERT INTO orders ({cols}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values()))


def test_migrate_creates_the_four_tables_and_outbox(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        applied = _migrator(conn).apply()
        versions = [m.version for m in applied]
        assert versions == [m.version for m in load(default_directory())] and versions[:3] == ["0001", "0002", "0003"]
        comment = conn.execute(
            "SELECT col_description(attrelid, attnum) FROM pg_attribute"
            " WHERE attrelid = 'orders'::regclass AND attname = 'content_hash'"
        ).fetchone()
        assert comment is not None and "as first received" in comment[0]  # 0004: what content_hash holds
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"orders", "deliveries", "payments", "items", "outbox", "schema_migrations"} == tables
        assert not any("nomenclature" in t for t in tables)
        # No column stores the whole order as JSON (outbox payload is an event, not the order).
        json_cols = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND data_type IN ('json', 'jsonb')"
        ).fetchall()
        assert json_cols == [("outbox", "payload")]
        money = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE column_name IN"
            " ('amount','delivery_cost','goods_total','custom_fee','price','total_price','chrt_id','nm_id','sm_id')"
        ).fetchall()
        assert money and all(dt == "bigint" for _, _, dt in money)
        fks = conn.execute(
            "SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND confrelid = 'orders'::regclass"
        ).fetchall()
        assert {r[0] for r in fks} == {"deliveries", "payments", "items", "outbox"}
        # The items primary key (order_uid, position) is the index on order_uid.
        idx = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'items' AND indexdef LIKE '%(order_uid, \"position\")%'"
        ).fetchall()
        assert idx


def test_second_run_is_a_no_op_and_status_is_read_only(empty_db: str) -> None:
    with psycopg.connect(empty_db, autocommit=True) as conn:
        states = _migrator(conn).status()
        assert len(states) == len(load(default_directory())) and not any(s.applied for s in states)
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
        _migrator(conn).apply()
        assert _migrator(conn).apply() == []
        assert all(s.applied for s in _migrator(conn).status())


def test_two_concurrent_runs_apply_each_migration_once(empty_db: str) -> None:
    results: list[int] = []

    def run() -> None:
        with psycopg.connect(empty_db, autocommit=True) as conn:
            results.append(len(_migrator(conn).apply()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each migration once, whichever run took it (the runs may interleave: each takes the lock per migration).
    assert sum(results) == len(load(default_directory()))
    with psycopg.connect(empty_db) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (sum(results),)


@pytest.mark.parametrize(
    ("table_sql", "error"),
    [
        (
            "INSERT INTO payments (order_uid, transaction, request_id, currency, provider, amount, payment_dt, bank,"
            " delivery_cost, goods_total, custom_fee) VALUES ('o1','t','','USD','p',-1,0,'b',0,0,0)",
            errors.CheckViolation,
        ),
        (
            "INSERT INTO payments (order_uid, transaction, request_id, currency, provider, amount, payment_dt, bank,"
            " delivery_cost, goods_total, custom_fee) VALUES ('o1','t','','usd','p',1,0,'b',0,0,0)",
            errors.CheckViolation,
        ),
        (
            "INSERT INTO items (order_uid, position, chrt_id, track_number, price, rid, name, sale, size, total_price,"
            " nm_id, brand, status) VALUES ('o1',0,1,'T',100,'r','n',101,'0',0,1,'b',200)",
            errors.CheckViolation,
        ),
        (
            "INSERT INTO items (order_uid, position, chrt_id, track_number, price, rid, name, sale, size, total_price,"
            " nm_id, brand, status) VALUES ('o1',0,1,'T',-5,'r','n',0,'0',0,1,'b',200)",
            errors.CheckViolation,
        ),
        (
            "INSERT INTO deliveries (order_uid, name, phone, zip, city, address, region, email)"
            " VALUES ('o1', NULL, 'p','z','c','a','r','e')",
            errors.NotNullViolation,
        ),
        (
            "INSERT INTO deliveries (order_uid, name, phone, zip, city, address, region, email)"
            " VALUES ('nope', 'n', 'p','z','c','a','r','e')",
            errors.ForeignKeyViolation,
        ),
    ],
)
def test_database_enforces_the_model(migrated_db: str, table_sql: str, error: type[Exception]) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        _insert_order(conn)
        with pytest.raises(error):
            conn.execute(table_sql)


def test_order_uid_and_hash_are_checked(migrated_db: str) -> None:
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        with pytest.raises(errors.CheckViolation):
            _insert_order(conn, order_uid="bad uid!")
        with pytest.raises(errors.CheckViolation):
            _insert_order(conn, content_hash=b"short")
        _insert_order(conn)
        with pytest.raises(errors.UniqueViolation):
            _insert_order(conn)


def test_a_migration_longer_than_the_sessions_statement_timeout_still_applies(empty_db: str) -> None:
    """Every ordersctl session carries a statement_timeout (60 s by default); rewriting a large table can take
    longer, so the migrator lifts it for its own session."""
    from ordersctl.adapters.migrations import Migration
    from ordersctl.adapters.postgres import connect
    from ordersctl.config import PostgresSettings

    settings = PostgresSettings(dsn=empty_db, statement_timeout_ms=200)
    slow = Migration("0001", "slow", "CREATE TABLE t (id int); SELECT pg_sleep(0.5);")
    with connect(settings, autocommit=True) as conn:
        assert [m.version for m in Migrator(conn, [slow]).apply()] == ["0001"]
        timeout = conn.execute("SHOW statement_timeout").fetchone()
    assert timeout == ("200ms",), "the session's own setting is back once the migrator is done"
