"""Every command end to end over TLS and authentication, once per Kafka path (SASL_SSL with SCRAM, mutual TLS):
PostgreSQL through PgBouncer in transaction pooling mode, Redis over TLS as an ACL user, Kafka with ACLs."""

from __future__ import annotations

import json
import random
import signal
import socket
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest

from ordersctl.domain.generator import OrderGenerator, dump
from tests.secure.conftest import SecureClient
from tests.waiting import wait_for

pytestmark = [pytest.mark.secure, pytest.mark.e2e, pytest.mark.slow]
VALID = 40
ROLE_DEFAULTS = """SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
                   WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                     AND d.datname = current_database()"""


def _ok(done: object) -> None:
    assert getattr(done, "returncode", None) == 0, f"{getattr(done, 'args', '')}: {getattr(done, 'stderr', '')[-3000:]}"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - our own http://127.0.0.1 server
            return r.status, r.headers.get("X-Cache", "")
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:
        return 0, ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _orders_file(path: Path) -> tuple[list[str], str]:
    """VALID new orders and two poison lines (not JSON; a schema violation); their uids and the violator's."""
    generator = OrderGenerator(seed=random.randrange(1 << 30))
    orders = [generator.order() for _ in range(VALID)]
    violator = f"{orders[0]['order_uid'][:-4]}zzzz"
    lines = [dump(o) for o in orders] + [b"not json", json.dumps({"order_uid": violator}).encode()]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return [o["order_uid"] for o in orders], violator


def test_every_command_over_tls_and_authentication(secure: SecureClient, tmp_path: Path) -> None:
    migrate = secure.run("db", "migrate")
    _ok(migrate)
    assert "set as the defaults of role ordersctl in database orders_test" in migrate.stderr
    with psycopg.connect(secure.settings.postgres.dsn, prepare_threshold=None, autocommit=True) as conn:
        # Every session PgBouncer opens starts with them; sessions it opened before keep what they had.
        (defaults,) = conn.execute(ROLE_DEFAULTS).fetchone() or ([],)
    assert {"statement_timeout=60000", "lock_timeout=10000", "jit=off"} <= set(defaults), defaults
    _ok(secure.run("topics", "create", "--dlq", "--partitions", "2"))
    uids, violator = _orders_file(tmp_path / "orders.jsonl")
    _ok(secure.run("produce", "--file", str(tmp_path / "orders.jsonl")))

    consume = secure.run("consume", "--workers", "2", "--stop-when-idle", "3", "--json")
    _ok(consume)
    summary = json.loads(consume.stdout.strip().splitlines()[-1])
    assert summary["stored"] == VALID and sum(summary["dlq"].values()) == 2, summary

    log = tmp_path / "serve.log"
    _serve_from_postgres_and_redis(secure, uids, log)

    inspect = secure.run("dlq", "inspect", "--json")
    _ok(inspect)
    assert len(inspect.stdout.strip().splitlines()) == 2, inspect.stdout
    replay = secure.run("dlq", "replay", "--limit", "1")
    _ok(replay)
    # The replayed message is back on the orders topic: until it is consumed (and dead-lettered again), status
    # rightly calls the pipeline stopped (lag with no member in the group).
    assert secure.run("status", "--json").returncode == 1
    _ok(secure.run("consume", "--stop-when-idle", "3", "--json"))
    _ok(secure.run("status", "--json"))
    _ok(secure.run("trace", uids[2], "--json"))  # exit 0: stored
    assert secure.run("trace", violator).returncode == 5  # only dead-lettered
    printed = "".join(secure.transcript) + log.read_text()
    assert not [secret for secret in secure.secrets() if secret in printed], "a password in the output"


def _serve_from_postgres_and_redis(secure: SecureClient, uids: list[str], log: Path) -> None:
    """serve over TLS: an order from PostgreSQL through PgBouncer, then, after cache warm, one from Redis."""
    port = _free_port()
    server = secure.start("serve", "--port", str(port), "--warm-limit", "0", log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(f"{base}/health/ready")[0] == 200 or server.poll() is not None, 60, "serve ready")
        assert server.poll() is None, log.read_text()[-3000:]
        assert _get(f"{base}/orders/{uids[0]}") == (200, "db")
        warm = secure.run("cache", "warm", "--all", "--json")
        _ok(warm)
        assert _get(f"{base}/orders/{uids[1]}") == (200, "redis")
        # Through PgBouncer a server session shows the application_name of the client that used it last: the
        # processes name themselves (ordersctl-serve, ordersctl-consume-w0, ordersctl-cache, ...).
        with psycopg.connect(secure.settings.postgres.dsn, prepare_threshold=None, autocommit=True) as conn:
            query = "SELECT application_name FROM pg_stat_activity WHERE datname = 'orders_test'"
            names = {str(row[0]) for row in conn.execute(query)}
        assert any(name.startswith("ordersctl-") for name in names), names
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    assert server.returncode == 0, log.read_text()[-3000:]


def test_wrong_credentials_fail_in_one_line(secure: SecureClient) -> None:
    """A wrong password: exit 2 and one line naming the service and the cause, no traceback, no password (a running
    consume, a refused ACL, an untrusted certificate: test_access_errors.py)."""
    dsn = psycopg.conninfo.make_conninfo(secure.settings.postgres.dsn, password="not-the-password")
    # The password in the DSN, and as postgres.password (which replaces the DSN's where settings have it).
    migrate = secure.run("db", "migrate", ORDERS_POSTGRES__DSN=dsn, ORDERS_POSTGRES__PASSWORD="not-the-password")
    assert migrate.returncode == 2 and migrate.stderr.count("\n") == 1, migrate.stderr
    assert "PostgreSQL" in migrate.stderr and "authentication failed" in migrate.stderr
    if secure.settings.kafka.security_protocol == "SASL_SSL":
        topics = secure.run("topics", "list", timeout=120, ORDERS_KAFKA__SASL_PASSWORD="not-the-password")
    else:
        topics = secure.run("topics", "list", timeout=120, ORDERS_KAFKA__SSL_KEY_PASSWORD="not-the-password")
    assert topics.returncode == 2 and "Kafka" in topics.stderr.splitlines()[-1], topics.stderr
    for done in (migrate, topics):
        assert "Traceback" not in done.stderr and "not-the-password" not in done.stderr + done.stdout
