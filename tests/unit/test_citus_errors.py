"""Citus re-raises a worker's COPY error as XX000 with the worker's message: a rejected value must still be a
data error (the order to the DLQ, not a crashed batch), a duplicate key the concurrent-insert race."""

from __future__ import annotations

import pytest
from psycopg import errors

from ordersctl.adapters.citus import worker_copy_error
from ordersctl.adapters.postgres_errors import classify, is_data_error
from ordersctl.config import PostgresSettings
from ordersctl.errors import DataRejected


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ('new row for relation "items_102111" violates check constraint "items_sale_check"', "data"),
        ('null value in column "name" of relation "items_102111" violates not-null constraint', "data"),
        ('invalid input syntax for type bigint: "x"', "data"),
        ('duplicate key value violates unique constraint "orders_pkey_102008"', "duplicate"),
        ("could not connect to the worker", None),
    ],
)
def test_a_worker_copy_error_is_told_by_its_message(message: str, kind: str | None) -> None:
    error = errors.InternalError_(message)
    assert worker_copy_error(error) == kind
    assert is_data_error(error) is (kind == "data")


def test_only_citus_s_internal_error_is_read_by_its_message() -> None:
    other = errors.ObjectInUse('new row violates check constraint "x"')  # some other SQLSTATE: its own meaning
    assert worker_copy_error(other) is None and not is_data_error(other)
    rejected = classify(errors.InternalError_('new row violates check constraint "c"'), PostgresSettings())
    assert isinstance(rejected, DataRejected)
