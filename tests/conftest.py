"""Shared fixtures. Integration fixtures talk to the real stack (scripts/stack up) and fail loudly without it."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from psycopg import sql

from ordersctl.adapters.migrations import Migrator, default_directory, load
from ordersctl.config import Settings, load_settings
from ordersctl.runtime import Runtime
from tests import citus_nodes

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "canonical-order.json"
# The tests' own database: never the demo's "orders".
ADMIN_DSN = os.environ.get("ORDERS_TEST_ADMIN_DSN", "postgresql://ordersctl:ordersctl@127.0.0.1:54329/orders_test")
KAFKA = os.environ.get("ORDERS_TEST_KAFKA", "127.0.0.1:19092")
REDIS_URL = os.environ.get("ORDERS_TEST_REDIS", "redis://127.0.0.1:63799/15")


def _require(service: str, host_port: str) -> None:
    host, port = host_port.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError as exc:
        pytest.fail(f"{service} is not running at {host_port} ({exc}); start it with: scripts/stack up", pytrace=False)


@pytest.fixture(scope="session")
def canonical_bytes() -> bytes:
    return FIXTURE.read_bytes()


@pytest.fixture(scope="session")
def services() -> None:
    """Every integration test depends on this: the real PostgreSQL, Redis and Kafka must answer."""
    pg = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    redis = urlsplit(REDIS_URL)
    _require("PostgreSQL", f"{pg.get('host', '127.0.0.1')}:{pg.get('port', 5432)}")
    _require("Redis", f"{redis.hostname}:{redis.port or 6379}")
    _require("Kafka", KAFKA)


def _dsn_for(dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=dbname)


@pytest.fixture
def empty_db(services: None) -> Iterator[str]:
    """A brand-new empty database, dropped afterwards; yields its DSN. In the Citus lane it exists on every node
    and the coordinator knows the workers (tests/citus_nodes.py)."""
    with fresh_database() as dsn:
        yield dsn


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A brand-new empty database for the block, dropped afterwards (``empty_db``; a test wanting a second one)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    if citus_nodes.on_citus():
        citus_nodes.create_database(ADMIN_DSN, name)
        try:
            yield _dsn_for(name)
        finally:
            citus_nodes.drop_database(ADMIN_DSN, name)
        return
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _dsn_for(name)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def migrated_db(empty_db: str) -> str:
    return migrate(empty_db)


def migrate(dsn: str) -> str:
    """Every migration applied to the database of ``dsn``; returns the DSN."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        Migrator(conn, load(default_directory())).apply()
    return dsn


@pytest.fixture
def topic_prefix() -> Iterator[str]:
    """Unique topic names per test, so tests never see each other's messages. They are deleted afterwards:
    a broker holding every test's partitions takes ever longer to restart (the Kafka outage test)."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    _delete_topics(prefix)


def _delete_topics(prefix: str) -> None:
    """Best effort and bounded: a test that stopped Kafka must not fail in its clean-up."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": KAFKA, "log_level": 0})
    # Clean-up only: the test's outcome is already decided, whatever happens here.
    with contextlib.suppress(Exception):
        names = [t for t in admin.list_topics(timeout=5).topics if t.startswith(f"{prefix}.")]
        for future in admin.delete_topics(names, operation_timeout=10, request_timeout=15).values() if names else []:
            with contextlib.suppress(Exception):
                future.result()


@pytest.fixture
def settings(migrated_db: str, topic_prefix: str) -> Settings:
    """Settings wired to this test's database and topics on the real stack."""
    return settings_for(migrated_db, topic_prefix)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """A Runtime on this test's ``settings``, its clients closed afterwards."""
    rt = Runtime(settings)
    yield rt
    rt.close()


def settings_for(dsn: str, topic_prefix: str) -> Settings:
    """Settings for a test: this database, topics under this prefix, the stack's Redis and Kafka, quick retries."""
    return load_settings(
        overrides={
            "postgres": {"dsn": dsn, "pool_size": 4},
            "redis": {"url": REDIS_URL},
            "kafka": {
                "bootstrap_servers": KAFKA,
                "orders_topic": f"{topic_prefix}.orders",
                "dlq_topic": f"{topic_prefix}.orders.dlq",
                "events_topic": f"{topic_prefix}.orders.events",
                "group_id": f"{topic_prefix}-group",
            },
            "pipeline": {"retry_initial_seconds": 0.1, "retry_max_seconds": 1.0},
        }
    )
