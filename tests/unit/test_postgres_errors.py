"""Which PostgreSQL errors are retried, which dead-letter a message and which stop the process: decided by
SQLSTATE, in one place."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from ordersctl.adapters import postgres
from ordersctl.adapters.postgres import session_options, why_no_connection
from ordersctl.adapters.postgres_errors import classify, is_data_error
from ordersctl.config import PostgresSettings
from ordersctl.errors import AccessDenied, DataRejected, FatalError, QueryRefused, ServiceUnavailable, TransientError


@pytest.mark.parametrize(
    "error",
    [errors.QueryCanceled, errors.LockNotAvailable, errors.IdleInTransactionSessionTimeout, errors.DeadlockDetected],
)
def test_timeouts_and_lock_waits_are_transient_never_poison(error: type[psycopg.Error]) -> None:
    mapped = classify(error("cut short"), PostgresSettings())
    assert isinstance(mapped, TransientError) and not isinstance(mapped, DataRejected)


def test_bad_values_are_poison() -> None:
    assert isinstance(classify(errors.NumericValueOutOfRange("too big"), PostgresSettings()), DataRejected)


@pytest.mark.parametrize(
    ("error", "data"),
    [(errors.NumericValueOutOfRange, True), (errors.CheckViolation, True), (errors.UniqueViolation, True),
     (errors.DeadlockDetected, False), (errors.UndefinedTable, False)],
)  # fmt: skip
def test_data_errors_are_sqlstate_classes_22_and_23(error: type[psycopg.Error], data: bool) -> None:
    assert is_data_error(error("x")) is data
    assert is_data_error(ValueError("not from PostgreSQL")) is False


def test_every_session_carries_the_timeouts() -> None:
    settings = PostgresSettings(
        statement_timeout_ms=1500, lock_timeout_ms=200, idle_in_transaction_session_timeout_ms=0
    )
    options = session_options(settings)
    assert "-c statement_timeout=1500" in options
    assert "-c lock_timeout=200" in options
    assert "-c idle_in_transaction_session_timeout=0" in options


@pytest.mark.parametrize(
    ("error", "fatal"),
    [(errors.InvalidPassword, AccessDenied), (errors.InvalidAuthorizationSpecification, AccessDenied),
     (errors.InsufficientPrivilege, AccessDenied), (errors.UndefinedTable, QueryRefused),
     (errors.SyntaxError, QueryRefused), (errors.UndefinedColumn, QueryRefused),
     (errors.FeatureNotSupported, QueryRefused)],
)  # fmt: skip
def test_what_cannot_heal_is_fatal_never_retried_nor_dead_lettered(
    error: type[psycopg.Error], fatal: type[FatalError]
) -> None:
    """SQLSTATE classes 28 (authorization), 0A (not supported) and 42 (invalid; 42501: a missing privilege)."""
    mapped = classify(error("refused"), PostgresSettings())
    assert type(mapped) is fatal
    assert isinstance(mapped, FatalError) and mapped.service == "PostgreSQL"
    assert not isinstance(mapped, TransientError | DataRejected)


@pytest.mark.parametrize(
    ("message", "denied"),
    [('connection failed: connection to server at "db", port 5432 failed: FATAL:  password authentication failed '
      'for user "ordersctl"', True),
     ('connection failed: FATAL:  no pg_hba.conf entry for host "10.0.0.1", user "u", database "d"', True),
     ('connection failed: FATAL:  role "nobody" does not exist', True),
     ("connection failed: ERROR:  SASL authentication failed", True),
     ("connection failed: SSL error: certificate verify failed", True),
     ('connection failed: server certificate for "db.example" does not match host name "db"', True),
     ('connection failed: connection to server at "127.0.0.1", port 54329 failed: Connection refused', False),
     ("connection failed: timeout expired", False),
     ("consuming input failed: server closed the connection unexpectedly", False),
     ("connection failed: SSL SYSCALL error: EOF detected", False)],
)  # fmt: skip
def test_a_refused_connection_is_access_denied_and_an_outage_stays_transient(message: str, denied: bool) -> None:
    """A refused connection has no SQLSTATE: libpq's text tells credentials from an outage."""
    mapped = classify(psycopg.OperationalError(message), PostgresSettings())
    assert isinstance(mapped, AccessDenied) is denied
    assert isinstance(mapped, ServiceUnavailable) is not denied


def test_a_pool_timeout_is_explained_by_one_direct_attempt_reused_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """In an outage every request of a busy server times out on the pool: one probe per PROBE_EVERY_SECONDS."""
    attempts: list[str] = []

    def refused(settings: PostgresSettings, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
        attempts.append(settings.dsn)
        raise AccessDenied("PostgreSQL", "access denied at db:5432/orders (password authentication failed)")

    monkeypatch.setattr(postgres, "connect", refused)
    settings = PostgresSettings(dsn="postgresql://u:p@db:5432/orders")
    verdicts = [why_no_connection(settings) for _ in range(5)]
    assert len(attempts) == 1
    assert all(isinstance(v, AccessDenied) for v in verdicts)
    assert len({id(v) for v in verdicts}) == 5, "each raise gets its own instance"
