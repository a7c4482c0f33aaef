"""scripts/stack runs PostgreSQL durable by default (as production), and applies a requested profile even to a
server that already runs with the other one; its pg-crash is a crash that pg-start recovers from."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ADMIN_DSN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DURABILITY = ("fsync", "synchronous_commit", "full_page_writes")


def _settings(dsn: str) -> dict[str, str]:
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(DURABILITY),))
        return {str(name): str(setting) for name, setting in rows}


def test_the_test_server_is_durable(services: None) -> None:
    assert _settings(ADMIN_DSN) == dict.fromkeys(DURABILITY, "on"), (
        "the tests run on scripts/stack's durable default: unset ORDERS_STACK_PG_PROFILE and run scripts/stack up"
    )


@pytest.fixture
def private_stack() -> Iterator[dict[str, str]]:
    """Environment for a scripts/stack of its own (folder, PostgreSQL port): never the shared stack's server."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Under /tmp and world-searchable, so a root machine's 'postgres' user keeps the cluster in this folder.
    stack = Path(tempfile.mkdtemp(prefix="ordersctl-stack-test-", dir="/tmp"))
    stack.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_STACK_")}
    env |= {"ORDERS_STACK_DIR": str(stack), "ORDERS_STACK_PG_PORT": str(port)}
    try:
        yield env
    finally:
        subprocess.run([ROOT / "scripts" / "stack", "pg-stop"], env=env, capture_output=True, timeout=120, check=False)
        shutil.rmtree(stack, ignore_errors=True)


def _stack(env: dict[str, str], *args: str, profile: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = {"ORDERS_STACK_PG_PROFILE": profile} if profile else {}
    done = subprocess.run(
        [ROOT / "scripts" / "stack", *args], env=env | extra, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"scripts/stack {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done


@pytest.mark.slow
def test_stack_applies_the_requested_profile_to_a_running_server(private_stack: dict[str, str]) -> None:
    env = private_stack
    dsn = f"postgresql://ordersctl:ordersctl@127.0.0.1:{env['ORDERS_STACK_PG_PORT']}/postgres"

    _stack(env, "pg-start")
    assert _settings(dsn) == dict.fromkeys(DURABILITY, "on")
    assert _stack(env, "pg-profile").stdout == "durable\n"

    switched = _stack(env, "pg-start", profile="fast")
    assert "restarting" in switched.stderr and "fast" in switched.stderr
    assert _settings(dsn) == {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    assert _stack(env, "pg-profile").stdout == "fast\n"

    again = _stack(env, "pg-start", profile="fast")
    assert "restarting" not in again.stderr  # already as asked: left running

    _stack(env, "pg-start")  # the default again
    assert _settings(dsn) == dict.fromkeys(DURABILITY, "on")
    status = subprocess.run(
        [ROOT / "scripts" / "stack", "status"], env=env, capture_output=True, text=True, check=False
    )
    postgres_line = next(line for line in status.stdout.splitlines() if line.startswith("postgres"))
    assert " up " in postgres_line and "durable" in postgres_line


def test_an_unknown_profile_is_refused(private_stack: dict[str, str]) -> None:
    done = subprocess.run(
        [ROOT / "scripts" / "stack", "pg-start"],
        env=private_stack | {"ORDERS_STACK_PG_PROFILE": "turbo"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0 and "turbo" in done.stderr
    assert not (Path(private_stack["ORDERS_STACK_DIR"]) / "pgdata").exists()  # refused before anything started


@pytest.mark.slow
def test_pg_crash_stops_without_a_checkpoint_and_pg_start_recovers(private_stack: dict[str, str]) -> None:
    env = private_stack
    dsn = f"postgresql://ordersctl:ordersctl@127.0.0.1:{env['ORDERS_STACK_PG_PORT']}/orders"
    _stack(env, "pg-start")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE crash_probe (n int)")
        conn.execute("INSERT INTO crash_probe VALUES (1)")

    assert "crashed" in _stack(env, "pg-crash").stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2).close()

    _stack(env, "pg-start")  # returns once the recovered server accepts connections
    log = (Path(env["ORDERS_STACK_DIR"]) / "logs" / "postgres.log").read_text()
    assert "not properly shut down; automatic recovery in progress" in log  # a crash, not a clean stop
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        assert conn.execute("SELECT n FROM crash_probe").fetchall() == [(1,)]  # the durable profile kept the commit
