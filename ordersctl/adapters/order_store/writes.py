"""Storing a batch of orders: one transaction, binary COPY into the four tables and the outbox; duplicates
and conflicts recognised, a row PostgreSQL rejects isolated under savepoints. One typed outcome per order."""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from ordersctl.adapters.citus import worker_copy_error
from ordersctl.adapters.order_store.outbox import copy_events
from ordersctl.adapters.order_store.reads import OrderReads
from ordersctl.adapters.postgres_errors import is_data_error
from ordersctl.domain.order import Order
from ordersctl.domain.rows import (
    DELIVERY_COLUMNS,
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    PAYMENT_COLUMNS,
    OrderRows,
    same_content,
    to_rows,
)
from ordersctl.errors import DataRejected, OrderConflict, PoisonError, TransientError

Conn = psycopg.Connection[Any]

# Binary COPY: no text formatting on our side, no parsing on the server's; the types follow sql/0001_orders.sql.
_TYPES = {
    "orders": ["text"] * 8 + ["int8", "timestamptz", "text", "bytea"],
    "deliveries": ["text"] * 8,
    "payments": ["text"] * 5 + ["int8", "int8", "text", "int8", "int8", "int8"],
    "items": ["text", "int4", "int8", "text", "int8", "text", "text", "int2", "text", "int8", "int8", "text", "int8"],
}


def _copy_sql(table: str, columns: Sequence[str]) -> str:
    assert len(columns) == len(_TYPES[table]), table
    return (
        sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)")
        .format(sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        .as_string(None)
    )


_COPY = {
    table: _copy_sql(table, columns)
    for table, columns in (
        ("orders", ORDER_COLUMNS),
        ("deliveries", DELIVERY_COLUMNS),
        ("payments", PAYMENT_COLUMNS),
        ("items", ITEM_COLUMNS),
    )
}
_SELECT_FINGERPRINTS = "SELECT order_uid, content_hash FROM orders WHERE order_uid = ANY(string_to_array(%s, ','))"
# At most batch_size keys in a table that only grows: by index, always (for the transaction). The planner scanned
# the whole table, in parallel from ~100,000 orders, several times slower than the index (docs/performance.md).
_BY_INDEX = "SELECT set_config('enable_seqscan', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)"


class Status(enum.Enum):
    """What became of one order of a batch."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # the same order is stored already: a no-op
    CONFLICT = "conflict"  # its order_uid is stored with other content: poison
    REJECTED = "rejected"  # PostgreSQL rejected one of its values: poison


class HasRows(Protocol):
    """Anything that carries an order's rows (the worker's decoded message, or just the rows of an order)."""

    @property
    def rows(self) -> OrderRows: ...


T = TypeVar("T", bound=HasRows)


# Not frozen: one is made per order on the ingest path, and a frozen dataclass takes three times as long to build.
@dataclass(slots=True)
class Saved(Generic[T]):
    """The outcome for one order: the item it was given as, its status, and the poison error when it is one."""

    item: T
    status: Status
    error: PoisonError | None = None


@dataclass(frozen=True, slots=True)
class Rowed:
    """An order's rows with nothing else attached (for callers that store orders, not messages)."""

    rows: OrderRows


class OrderWrites:
    """Stores batches on a connection the caller owns; ``reads`` compares a copy with the stored order."""

    def __init__(self, reads: OrderReads) -> None:
        self._reads = reads

    def save_orders(self, conn: Conn, orders: Sequence[Order]) -> list[Saved[Rowed]]:
        """``save`` for orders not yet turned into rows (their fingerprint: the canonical JSON's)."""
        return self.save(conn, [Rowed(to_rows(o)) for o in orders])

    def save(self, conn: Conn, batch: Sequence[T], traceparents: Mapping[str, str] | None = None) -> list[Saved[T]]:
        """Store new orders in ONE transaction; one outcome per item, in the batch's order.

        Same order_uid with the same content -> DUPLICATE (no-op); different content -> CONFLICT; a row
        PostgreSQL rejects as data -> REJECTED for that order alone, the others are still stored.
        ``traceparents`` (tracing on): order_uid -> the traceparent its event carries on."""
        try:
            return self._save(conn, batch, traceparents, isolate=False)
        except _Rejected:  # the transaction rolled back: again, with each COPY under a savepoint to bisect
            return self._save(conn, batch, traceparents, isolate=True)

    def _save(
        self, conn: Conn, batch: Sequence[T], traceparents: Mapping[str, str] | None, *, isolate: bool
    ) -> list[Saved[T]]:
        outcomes: dict[int, Saved[T]] = {}
        with conn.transaction():
            # One comma-joined string rather than an array parameter: psycopg builds arrays in Python, a cost
            # per order, and an order_uid never holds a comma (domain rule [A-Za-z0-9_-]).
            uids = ",".join({item.rows.order_uid for item in batch})
            conn.execute(_BY_INDEX)
            stored = dict(conn.execute(_SELECT_FINGERPRINTS, (uids,)).fetchall())
            first: dict[str, OrderRows] = {}  # new in this batch: a later copy compares against this one
            fresh: list[int] = []  # their positions: what to insert
            differ: list[int] = []  # stored under another fingerprint: compared field by field below
            for i, item in enumerate(batch):
                rows = item.rows
                uid = rows.order_uid
                if uid in first:
                    outcomes[i] = _same_or_conflict(item, first[uid])
                elif uid not in stored:
                    first[uid] = rows
                    fresh.append(i)
                elif bytes(stored[uid]) == rows.content_hash:
                    outcomes[i] = Saved(item, Status.DUPLICATE)  # the very same bytes again: a redelivery
                else:
                    differ.append(i)
            if differ:
                # Rare: a conflict, or the same order sent again formatted differently.
                existing = self._reads.stored_rows(conn, [batch[i].rows.order_uid for i in differ])
                for i in differ:
                    outcomes[i] = _same_or_conflict(batch[i], existing[batch[i].rows.order_uid])
            for i, problem in _insert(conn, [(i, batch[i].rows) for i in fresh], traceparents, isolate):
                outcomes[i] = Saved(batch[i], Status.REJECTED, problem)
        return [outcomes.get(i) or Saved(item, Status.STORED) for i, item in enumerate(batch)]


def _same_or_conflict(item: T, kept: OrderRows) -> Saved[T]:
    new = item.rows
    if kept.content_hash == new.content_hash or same_content(kept, new):
        return Saved(item, Status.DUPLICATE)
    return Saved(item, Status.CONFLICT, OrderConflict(f"order {new.order_uid} is stored with other content"))


class _Rejected(Exception):
    """PostgreSQL rejected a value of a batch copied without savepoints: its transaction is rolled back."""


def _insert(
    conn: Conn, batch: list[tuple[int, OrderRows]], traceparents: Mapping[str, str] | None, isolate: bool
) -> list[tuple[int, DataRejected]]:
    """COPY the batch. Without ``isolate`` a value PostgreSQL rejects raises ``_Rejected``; with it each COPY runs
    under a savepoint and a rejection is bisected down to the bad orders. (A savepoint is two round trips more
    per batch, about a tenth of a small batch's CPU on our side, for what is rare: docs/performance.md.)"""
    if not batch:
        return []
    try:
        with conn.transaction() if isolate else contextlib.nullcontext():  # a savepoint inside the batch's
            _copy(conn, [rows for _, rows in batch], traceparents)
        return []
    except pg_errors.UniqueViolation as exc:
        # Another worker stored one of these orders since our SELECT (a rebalance race): retry the batch,
        # the next attempt classifies it as duplicate or conflict.
        raise TransientError("order stored concurrently by another worker") from exc
    except psycopg.Error as exc:
        if worker_copy_error(exc) == "duplicate":  # the same race on Citus, which loses the SQLSTATE
            raise TransientError("order stored concurrently by another worker") from exc
        if not is_data_error(exc):
            raise
        if not isolate:
            raise _Rejected from exc
        if len(batch) == 1:
            return [(batch[0][0], DataRejected(f"PostgreSQL rejected the order ({exc.sqlstate})"))]
    middle = len(batch) // 2
    return _insert(conn, batch[:middle], traceparents, isolate) + _insert(conn, batch[middle:], traceparents, isolate)


def _copy(conn: Conn, batch: list[OrderRows], traceparents: Mapping[str, str] | None) -> None:
    table_rows: dict[str, Iterable[tuple[Any, ...]]] = {
        "orders": (rows.order for rows in batch),
        "deliveries": (rows.delivery for rows in batch),
        "payments": (rows.payment for rows in batch),
        "items": (item for rows in batch for item in rows.items),
    }
    with conn.cursor() as cur:
        for table, rows_of_table in table_rows.items():
            with cur.copy(_COPY[table]) as copy:
                copy.set_types(_TYPES[table])
                write = copy.write_row
                for row in rows_of_table:
                    write(row)
        copy_events(cur, batch, traceparents)
