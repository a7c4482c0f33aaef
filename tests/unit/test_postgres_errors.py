"""Which PostgreSQL errors are retried and which dead-letter a message: decided by SQLSTATE, in one place."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from ordersctl.adapters.postgres import classify, is_data_error, session_options
from ordersctl.config import PostgresSettings
from ordersctl.errors import DataRejected, TransientError


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
