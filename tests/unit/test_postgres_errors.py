"""Which PostgreSQL errors are retried and which dead-letter a message: decided by SQLSTATE, in one place; and
what every session carries, directly or through a transaction pooler."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from ordersctl.adapters.postgres import classify, connect_kwargs, for_process, is_data_error, session_options
from ordersctl.config import PostgresSettings, Settings
from ordersctl.errors import DataRejected, ServiceUnavailable, TransientError


@pytest.mark.parametrize(
    "error",
    [errors.QueryCanceled, errors.LockNotAvailable, errors.IdleInTransactionSessionTimeout, errors.DeadlockDetected,
     errors.ReadOnlySqlTransaction, errors.AdminShutdown],
)  # fmt: skip
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


def test_a_lost_connection_is_a_service_unavailable() -> None:
    for lost in (psycopg.OperationalError("server closed the connection unexpectedly"), psycopg.InterfaceError("x")):
        assert isinstance(classify(lost, PostgresSettings()), ServiceUnavailable)


def test_behind_a_transaction_pooler_no_startup_options_and_no_prepared_statements() -> None:
    direct = connect_kwargs(PostgresSettings())
    pooled = connect_kwargs(PostgresSettings(pooler="transaction"))
    assert "-c statement_timeout=60000" in direct["options"] and "prepare_threshold" not in direct
    assert "options" not in pooled and pooled["prepare_threshold"] is None


def test_each_process_names_itself_unless_the_user_did() -> None:
    assert connect_kwargs(for_process(Settings(), "ordersctl-serve").postgres)["application_name"] == "ordersctl-serve"
    chosen = Settings(postgres=PostgresSettings(application_name="billing"))
    assert connect_kwargs(for_process(chosen, "ordersctl-serve").postgres)["application_name"] == "billing"
    in_dsn = PostgresSettings(dsn="postgresql://u@h/db?application_name=mine")
    assert "application_name" not in connect_kwargs(in_dsn)
