"""A pooled connection to a server that stopped accepting writes is retired, not lent (a demoted primary behind
the same address, as through a proxy or a virtual IP)."""

from __future__ import annotations

import time

import psycopg
import pytest

from ordersctl.adapters.postgres import make_pool, pooled_connection
from ordersctl.adapters.postgres_check import wants_writable
from ordersctl.config import Settings
from ordersctl.errors import ServiceUnavailable

pytestmark = [pytest.mark.ha, pytest.mark.integration]


def _read_only_by_default(dsn: str, on: bool) -> None:
    """The primary read-only by default for new and open sessions alike (a reload reaches open sessions); reached
    as ``primary`` (not in recovery), which a server read-only by default still is."""
    with psycopg.connect(dsn, target_session_attrs="primary", autocommit=True) as admin:
        if on:
            admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        else:
            admin.execute("ALTER SYSTEM RESET default_transaction_read_only")
        admin.execute("SELECT pg_reload_conf()")
    time.sleep(1)  # the postmaster passes the reload on to every session in its own time


def test_a_pooled_connection_to_a_server_that_no_longer_takes_writes_is_not_lent(ha_settings: Settings) -> None:
    settings = ha_settings.postgres.model_copy(update={"pool_size": 1})
    assert wants_writable(settings.dsn)
    pool = make_pool(settings)
    try:
        with pooled_connection(pool, settings, timeout=10) as conn:
            conn.execute("SELECT 1")  # the one connection, now in the pool, on the primary
        _read_only_by_default(settings.dsn, on=True)
        try:
            # Lent as it was, it would fail the write with 25006; checked, it is closed, and libpq finds no
            # writable host to connect to instead: the pool has nothing to lend.
            with pytest.raises(ServiceUnavailable), pooled_connection(pool, settings, timeout=3) as conn:
                conn.execute("CREATE TABLE IF NOT EXISTS written (x int)")
        finally:
            _read_only_by_default(settings.dsn, on=False)
        with pooled_connection(pool, settings, timeout=15) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS written (x int)")
    finally:
        pool.close()
