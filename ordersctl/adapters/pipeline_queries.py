"""Read-only questions operators ask PostgreSQL about the pipeline: the outbox backlog, one order's facts.

Ids, times, counts and fingerprints only: no column holding personal data is read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import class_row

Conn = psycopg.Connection[Any]
Row = TypeVar("Row")


@dataclass(frozen=True)
class OutboxBacklog:
    """Events not yet confirmed by Kafka (the relay deletes a row once its event is confirmed)."""

    pending: int
    oldest_age_seconds: float | None  # None when nothing is pending


@dataclass(frozen=True)
class StoredOrdersEstimate:
    """The orders table as PostgreSQL's statistics count it: cheap at any size, but an estimate. Crash recovery
    (and ``pg_stat_reset()``) sets both figures back to 0; VACUUM or ANALYZE puts ``rows`` right again."""

    rows: int  # rows held (n_live_tup: exact on commit, re-estimated by VACUUM and ANALYZE)
    inserted: int  # rows ever written, rolled-back ones included (n_tup_ins): its rise over time is the store rate


@dataclass(frozen=True)
class StoredOrder:
    """What PostgreSQL holds about one order, without its content."""

    stored_at: datetime
    content_hash: bytes
    items: int


@dataclass(frozen=True)
class PendingEvent:
    """An outbox row: the "order saved" event still to be published."""

    event_id: int
    created_at: datetime


def rows_as(conn: Conn, row: type[Row], query: str, params: Sequence[Any] | None = None) -> list[Row]:
    """The rows of ``query`` as ``row`` objects, each column given to the field of its name. Without ``params``
    the query is sent as it is (a ``%s`` in it stays: Citus's run_command_on_shards fills it in)."""
    with conn.cursor(row_factory=class_row(row)) as cur:
        return cur.execute(query, params).fetchall()


def outbox_backlog(conn: Conn) -> OutboxBacklog:
    # The age comes from the database clock, the one that wrote created_at.
    query = "SELECT count(*) AS pending, extract(epoch FROM now() - min(created_at))::float8 AS oldest_age_seconds"
    return rows_as(conn, OutboxBacklog, query + " FROM outbox")[0]  # an aggregate: always one row


def stored_orders_estimate(conn: Conn) -> StoredOrdersEstimate:
    # Statistics rather than count(*): a count reads all of the table or its key on every status refresh (the
    # pipeline page asks every few seconds), while this is one row. A busy session reports its writes about
    # once a second, an idle one within 10 s or when it ends: the figures trail the commits by that much.
    query = "SELECT n_live_tup AS rows, n_tup_ins AS inserted FROM pg_stat_user_tables WHERE relid = 'orders'::regclass"
    found = rows_as(conn, StoredOrdersEstimate, query)
    return found[0] if found else StoredOrdersEstimate(0, 0)


def stored_order(conn: Conn, order_uid: str) -> StoredOrder | None:
    found = rows_as(
        conn,
        StoredOrder,
        "SELECT o.stored_at, o.content_hash, (SELECT count(*) FROM items i WHERE i.order_uid = o.order_uid) AS items"
        " FROM orders o WHERE o.order_uid = %s",
        (order_uid,),
    )
    return found[0] if found else None


def pending_events(conn: Conn, order_uid: str) -> list[PendingEvent]:
    query = "SELECT id AS event_id, created_at FROM outbox WHERE order_uid = %s ORDER BY id"
    return rows_as(conn, PendingEvent, query, (order_uid,))
