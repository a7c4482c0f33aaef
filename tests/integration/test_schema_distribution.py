"""The schema stays ready to be distributed by order_uid (Citus, docs/scaling.md): every primary key and unique
constraint includes order_uid, and every foreign key joins tables on order_uid, so co-located shards hold
each order whole. Checked on the migrated catalogue, not on the SQL text."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration

CONSTRAINTS = """
SELECT c.conrelid::regclass::text, c.conname, c.contype,
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)),
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.confrelid AND a.attnum = ANY (c.confkey))
FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
WHERE n.nspname = 'public' AND c.contype IN ('p', 'u', 'f') AND c.conrelid::regclass::text <> 'schema_migrations'
"""
UNIQUE_INDEXES = """
SELECT i.indexrelid::regclass::text,
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey))
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND i.indisunique AND t.relname <> 'schema_migrations'
"""


def test_every_key_and_foreign_key_includes_order_uid(migrated_db: str) -> None:
    with psycopg.connect(migrated_db) as conn:
        constraints = conn.execute(CONSTRAINTS).fetchall()
        unique_indexes = conn.execute(UNIQUE_INDEXES).fetchall()
    tables = {table for table, *_ in constraints}
    assert {"orders", "deliveries", "payments", "items", "outbox"} <= tables
    offenders = [
        f"{table}.{name}"
        for table, name, kind, columns, referenced in constraints
        if "order_uid" not in columns or (kind == "f" and "order_uid" not in referenced)
    ]
    offenders += [index for index, columns in unique_indexes if "order_uid" not in columns]
    assert not offenders, f"not distributable by order_uid: {offenders}"
