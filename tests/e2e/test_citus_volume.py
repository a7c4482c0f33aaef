"""20,000 orders through the pipeline on Citus (issue #23, "Done when"): produced, consumed by two workers into
tables distributed at Citus's default shard count, every one stored once, every event published, no worker
restart, nothing dead-lettered. The Citus lane only (make test-citus)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from ordersctl.adapters.migrations import Migrator, default_directory, load
from ordersctl.config import Settings
from tests import citus_nodes
from tests.conftest import ADMIN_DSN, settings_for
from tests.e2e.ingest import consume_until_idle
from tests.helpers import create_topics, db_rows, headers, ordersctl, read_topic, stored_count

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not citus_nodes.on_citus(), reason="runs against the Citus stack (make test-citus)"),
]
ORDERS = 20_000


@pytest.fixture
def default_sharded(topic_prefix: str) -> Iterator[Settings]:
    """A migrated database whose tables get Citus's default shard count (32), as a user's do: not the 4 of the
    other tests' databases, so a batch spans as many shards as it would in production."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    citus_nodes.create_database(ADMIN_DSN, name, shards=None)
    dsn = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            Migrator(conn, load(default_directory())).apply()
        yield settings_for(dsn, topic_prefix)
    finally:
        citus_nodes.drop_database(ADMIN_DSN, name)


def test_twenty_thousand_orders_stored_and_published_with_two_workers(default_sharded: Settings) -> None:
    settings, dsn = default_sharded, default_sharded.postgres.dsn
    shards = db_rows(dsn, "SELECT shard_count FROM citus_tables WHERE table_name = 'orders'::regclass")
    assert shards == [(32,)]
    create_topics(settings)
    produced = ordersctl(settings, "produce", "--count", str(ORDERS), "--seed", "2323", "--json", timeout=300)
    assert produced.returncode == 0, produced.stderr[-2000:]
    assert json.loads(produced.stdout)["sent"] == ORDERS

    started = time.monotonic()
    summary = consume_until_idle(settings, "--workers", "2", timeout=900)
    seconds = time.monotonic() - started

    assert summary["restarts"] == 0, "no worker may die on Citus (the relay's row lock killed them: #23)"
    assert summary["dlq"] == {}
    assert summary["stored"] == ORDERS and stored_count(dsn) == ORDERS
    assert db_rows(dsn, "SELECT count(DISTINCT order_uid) FROM orders") == [(ORDERS,)]
    assert db_rows(dsn, "SELECT count(*) FROM outbox") == [(0,)], "every event published, none left behind"
    events = read_topic(settings, settings.kafka.events_topic, expect=ORDERS, timeout=120)
    uids = {uid for (uid,) in db_rows(dsn, "SELECT order_uid::text FROM orders")}
    assert {(m.key() or b"").decode() for m in events} == uids
    assert len({headers(m)["event-id"] for m in events}) == ORDERS, "one event per order"
    print(f"citus: {ORDERS} orders consumed by 2 workers in {seconds:.1f}s ({ORDERS / seconds:.0f}/s)")
