"""Errors that retrying cannot heal stop the command with one line naming the service and the cause, and exit 2
(credentials, access, a missing topic) or 1 (a refused query); a running consume stops every worker, never
restarting them. Outages stay transient (test_ingest.py, test_postgres_faults.py)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.helpers import create_topics, log_messages, ordersctl, send, start_ordersctl, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _assert_one_line(result: subprocess.CompletedProcess[str], code: int, *parts: str) -> str:
    """The run ended with ``code`` and one line saying why, naming ``parts``; no traceback anywhere."""
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    messages = log_messages(result.stderr)
    ours = [message for message in messages if message.startswith("ordersctl: ")]
    assert len(ours) == 1, result.stderr[-3000:]
    assert messages[-1] == ours[0]
    for part in parts:
        assert part in ours[0]
    return ours[0]


def test_a_wrong_kafka_password_stops_consume_with_exit_2_and_one_line(settings: Settings) -> None:
    """The plain stack has no SASL listener: its PLAINTEXT listener refuses the SASL handshake, which librdkafka
    reports as an authentication failure, as it does a wrong SCRAM password."""
    create_topics(settings)
    started = time.monotonic()
    sasl = {"ORDERS_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT", "ORDERS_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "ORDERS_KAFKA__SASL_USERNAME": "ordersctl", "ORDERS_KAFKA__SASL_PASSWORD": "wrong-password"}  # fmt: skip
    result = ordersctl(settings, "consume", "--workers", "2", timeout=90, **sasl)
    assert time.monotonic() - started < 60
    line = _assert_one_line(result, 2, "Kafka: access denied at 127.0.0.1:19092", "_AUTHENTICATION")
    assert "wrong-password" not in result.stderr + result.stdout
    assert line.startswith("ordersctl: error: ")


def test_a_wrong_security_protocol_stops_consume_with_exit_2_and_one_line(settings: Settings) -> None:
    """SSL against the PLAINTEXT listener: a transport failure that librdkafka puts down to the protocol, fatal once
    it persisted 10 s (a broker going down mid-handshake can say the same once)."""
    create_topics(settings)
    started = time.monotonic()
    result = ordersctl(settings, "consume", timeout=90, ORDERS_KAFKA__SECURITY_PROTOCOL="SSL")
    assert 10 <= time.monotonic() - started < 60
    _assert_one_line(result, 2, "Kafka: wrong security protocol for the listener at 127.0.0.1:19092")


def test_a_wrong_postgres_password_stops_consume_with_exit_2_and_one_line(settings: Settings) -> None:
    create_topics(settings)
    wrong = psycopg.conninfo.make_conninfo(settings.postgres.dsn, password="wrong-password")
    started = time.monotonic()
    result = ordersctl(settings, "consume", "--workers", "2", timeout=90, ORDERS_POSTGRES__DSN=wrong)
    assert time.monotonic() - started < 60
    _assert_one_line(result, 2, "PostgreSQL: access denied at 127.0.0.1:54329/", "password authentication failed")
    assert "wrong-password" not in result.stderr + result.stdout


@pytest.mark.parametrize("table", ["outbox", "items"])
def test_a_query_the_database_refuses_stops_consume_instead_of_restarting_it(settings: Settings, table: str) -> None:
    """A query fails on every try because its table was renamed (SQLSTATE 42P01): exit 1, no restart. The outbox
    relay's (a thread of each worker, from the start) or the store's (the worker's batch, once an order came)."""
    create_topics(settings)
    send(settings, list(OrderGenerator(seed=51).messages(10)))
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} RENAME TO {table}_renamed")
    started = time.monotonic()
    result = ordersctl(settings, "consume", "--workers", "2", "--json", timeout=90)
    assert time.monotonic() - started < 60
    _assert_one_line(result, 1, "PostgreSQL: query refused (42P01 UndefinedTable", f'"{table}"')
    assert '"restarts": 0' in result.stdout


def test_a_topic_that_does_not_exist_stops_consume_with_exit_2(settings: Settings) -> None:
    create_topics(settings, dlq=True, events=True)
    result = ordersctl(settings, "consume", timeout=90, ORDERS_KAFKA__ORDERS_TOPIC=f"{settings.kafka.orders_topic}.x")
    _assert_one_line(result, 2, "Kafka: topic not found", f"{settings.kafka.orders_topic}.x")


def test_a_wrong_postgres_password_stops_serve_with_exit_2_and_one_line(settings: Settings) -> None:
    wrong = psycopg.conninfo.make_conninfo(settings.postgres.dsn, password="wrong-password")
    result = ordersctl(settings, "serve", "--port", "0", timeout=60, ORDERS_POSTGRES__DSN=wrong)
    _assert_one_line(result, 2, "PostgreSQL: access denied at 127.0.0.1:54329/", "password authentication failed")
    assert "wrong-password" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", [("topics", "create"), ("produce", "--count", "1")])
def test_other_commands_end_on_refused_kafka_credentials_with_exit_2_and_one_line(
    settings: Settings, command: tuple[str, ...]
) -> None:
    sasl = {"ORDERS_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT", "ORDERS_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "ORDERS_KAFKA__SASL_USERNAME": "ordersctl", "ORDERS_KAFKA__SASL_PASSWORD": "wrong-password"}  # fmt: skip
    result = ordersctl(settings, *command, timeout=60, **sasl)
    _assert_one_line(result, 2, "Kafka: access denied at 127.0.0.1:19092", "_AUTHENTICATION")
    # Not librdkafka's retries for a whole timeout first (a line every 50 ms: ~200 in the 10 s of a producer's
    # last flush or of a metadata request).
    assert len(result.stderr.splitlines()) < 50, result.stderr[-3000:]
    assert "wrong-password" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("service", "env"),
    [("Kafka", {"ORDERS_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:1"}),
     ("PostgreSQL", {"ORDERS_POSTGRES__DSN": "postgresql://ordersctl:ordersctl@127.0.0.1:1/orders"})],
)  # fmt: skip
def test_a_service_down_at_start_is_an_outage_retried_not_a_fatal_error(
    settings: Settings, tmp_path: Path, service: str, env: dict[str, str]
) -> None:
    """Nothing listens at the address (never reached since the start): consume keeps retrying past the 10 s after
    which a persistent wrong security protocol is fatal, and stops cleanly when asked."""
    create_topics(settings)
    log = tmp_path / "consume.log"
    proc = start_ordersctl(settings, "consume", log=log, **env)
    try:
        time.sleep(20)
        assert proc.poll() is None, f"consume ended with {service} down: {log.read_text()[-2000:]}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    text = log.read_text()
    assert "ordersctl: error" not in text and "cannot heal" not in text
    if service == "PostgreSQL":
        assert proc.returncode == 0, text[-2000:]
        assert "PostgreSQL unreachable at 127.0.0.1:1/orders" in text


def test_serve_stops_with_exit_2_once_its_postgres_password_is_changed(settings: Settings, tmp_path: Path) -> None:
    """A running server keeps its pooled connections when its password changes; new ones are refused. It stops
    (exit 2, one line) instead of answering 503 for ever."""
    role = f"{settings.kafka.group_id.replace('-', '_')}_serve"
    with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'first-password'")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        dsn = psycopg.conninfo.make_conninfo(settings.postgres.dsn, user=role, password="first-password")
        log = tmp_path / "serve.log"
        proc = start_ordersctl(settings, "serve", "--port", "0", "--warm-limit", "0", log=log, ORDERS_POSTGRES__DSN=dsn)
        try:
            wait_for(lambda: "serve: listening" in log.read_text(), 30, "serve to listen")
            with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
                conn.execute(f"ALTER ROLE {role} PASSWORD 'second-password'")
            changed = time.monotonic()
            proc.wait(60)
            assert time.monotonic() - changed < 30
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, "", log.read_text())
        _assert_one_line(result, 2, "PostgreSQL: access denied at 127.0.0.1:54329/", "password authentication failed")
        assert "first-password" not in result.stderr
    finally:
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
