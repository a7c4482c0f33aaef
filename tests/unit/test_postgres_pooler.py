"""PostgreSQL behind a transaction pooler (PgBouncer pool_mode=transaction) and after a failover: what every
connection sends, how each process names itself, which errors are retried."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

from ordersctl.adapters.postgres import connect_kwargs
from ordersctl.adapters.postgres_errors import address, classify
from ordersctl.config import PostgresSettings, Settings, for_process
from ordersctl.errors import DataRejected, ServiceUnavailable, TransientError


@pytest.mark.parametrize("error", [errors.ReadOnlySqlTransaction, errors.AdminShutdown])
def test_a_read_only_server_after_a_failover_is_transient(error: type[psycopg.Error]) -> None:
    mapped = classify(error("cannot execute INSERT in a read-only transaction"), PostgresSettings())
    assert isinstance(mapped, TransientError) and not isinstance(mapped, DataRejected)


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


def test_the_address_of_a_multi_host_dsn_pairs_each_host_with_its_port() -> None:
    assert address("postgresql://u:secret@db-a:5433,db-b:5434/orders?target_session_attrs=read-write") == (
        "db-a:5433,db-b:5434/orders"
    )
    assert address("host=db-a,db-b port=6432 dbname=orders") == "db-a:6432,db-b:6432/orders"
    assert address("postgresql://u@db-a/orders") == "db-a:5432/orders"
