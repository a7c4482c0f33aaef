"""The HA lane: a real pg_auto_failover cluster (ORDERS_STACK_PG=ha scripts/stack up; `make test` starts it where
it can be installed) with the plain stack's Kafka and Redis. Without the cluster the lane is skipped, saying so."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from types import FrameType

import psycopg
import pytest
from psycopg import sql

from ordersctl.adapters.migrations import Migrator, default_directory, load
from ordersctl.config import Settings
from tests.conftest import ROOT, settings_for

STACK = str(ROOT / "scripts" / "stack")
HA_ENV = {**os.environ, "ORDERS_STACK_PG": "ha"}
MONITOR = ("127.0.0.1", int(os.environ.get("ORDERS_STACK_HA_MONITOR_PORT", "56430")))
# Both nodes, and libpq takes the one that accepts writes.
ADMIN_DSN = os.environ.get(
    "ORDERS_TEST_HA_DSN",
    "postgresql://ordersctl:ordersctl@127.0.0.1:56431,127.0.0.1:56432/orders_test?target_session_attrs=read-write",
)


# What the failover tests measured, shown at the end of every run (not only with -s).
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("PostgreSQL failover (tests/ha)")
        for line in FIGURES:
            terminalreporter.write_line(line)


def stack(*args: str, timeout: float = 360) -> str:
    """``ORDERS_STACK_PG=ha scripts/stack ARGS``; its stdout."""
    done = subprocess.run([STACK, *args], env=HA_ENV, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"scripts/stack {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def ha_cluster() -> Iterator[None]:
    """The cluster answers; back to a primary and a synchronous secondary before the lane starts. A SIGTERM
    (CI's timeout, say) interrupts the run like Ctrl-C, so the clean-ups run: the nftables table is removed."""
    try:
        socket.create_connection(MONITOR, timeout=2).close()
    except OSError:
        missing = "the HA stack is not running (ORDERS_STACK_PG=ha scripts/stack up)"
        if os.geteuid() == 0:  # `make test` starts it as root: missing then is a failure, never a pass
            pytest.fail(missing, pytrace=False)
        pytest.skip(f"{missing}: the HA lane needs root (apt-get, nftables), skipped")
    previous = signal.signal(signal.SIGTERM, _interrupted)
    try:
        stack("ha-heal")
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        stack("ha-unblock")


@pytest.fixture
def ha_db(ha_cluster: None) -> Iterator[str]:
    """A brand-new migrated database on the HA cluster, dropped afterwards; yields its multi-host DSN."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        Migrator(conn, load(default_directory())).apply()
    try:
        yield dsn
    finally:
        stack("ha-heal")
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def ha_settings(ha_db: str, topic_prefix: str) -> Settings:
    """Settings wired to this test's database on the HA cluster and its own topics."""
    return settings_for(ha_db, topic_prefix)
