"""The pool hands out no connection the server has closed (a restart, a failover, a terminated backend): its
check at checkout takes another, without a round trip on a connection that has nothing to say."""

from __future__ import annotations

import psycopg
import pytest

from ordersctl.adapters.postgres import SERVER_LIVENESS, make_pool
from ordersctl.config import PostgresSettings

pytestmark = pytest.mark.integration


def test_a_connection_the_server_closed_is_replaced_at_checkout(migrated_db: str) -> None:
    pool = make_pool(PostgresSettings(dsn=migrated_db, pool_size=1))
    try:
        with pool.connection() as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        with psycopg.connect(migrated_db, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", backend)  # waits until it is gone
        with pool.connection() as conn:  # would raise "terminating connection due to administrator command"
            assert conn.execute("SELECT pg_backend_pid()").fetchone() != backend
    finally:
        pool.close()


def test_the_server_end_of_a_session_notices_a_vanished_client(migrated_db: str) -> None:
    """The backend probes its client as the client probes it (SERVER_LIVENESS): one whose client vanished behind a
    partition ends within seconds instead of waiting in a COPY, locks held, for ever."""
    pool = make_pool(PostgresSettings(dsn=migrated_db, pool_size=1))
    try:
        with pool.connection() as conn:
            shown = [conn.execute(f"SHOW {name}").fetchone() for name in SERVER_LIVENESS]
    finally:
        pool.close()
    assert shown == [("4",), ("2",), ("3",), ("10000",)]
