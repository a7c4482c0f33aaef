"""Read-only questions operators ask PostgreSQL about the pipeline: the outbox backlog, one order's facts.

Ids, times, counts and fingerprints only: no column holding personal data is read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]


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


def outbox_backlog(conn: Conn) -> OutboxBacklog:
    # The age comes from the database clock, the one that wrote created_at.
    row = conn.execute("SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 FROM outbox").fetchone()
    if row is None:
        return OutboxBacklog(0, None)
    return OutboxBacklog(int(row[0]), None if row[1] is None else float(row[1]))


def stored_orders_estimate(conn: Conn) -> StoredOrdersEstimate:
    # Statistics rather than count(*): a count reads all of the table or its key on every status refresh (the
    # pipeline page asks every few seconds), while this is one row. A busy session reports its writes about
    # once a second, an idle one within 10 s or when it ends: the figures trail the commits by that much.
    row = conn.execute(
        "SELECT n_live_tup, n_tup_ins FROM pg_stat_user_tables WHERE relid = 'orders'::regclass"
    ).fetchone()
    if row is None:
        return StoredOrdersEstimate(0, 0)
    return StoredOrdersEstimate(int(row[0]), int(row[1]))


def stored_order(conn: Conn, order_uid: str) -> StoredOrder | None:
    row = conn.execute(
        "SELECT o.stored_at, o.content_hash, (SELECT count(*) FROM items i WHERE i.order_uid = o.order_uid)"
        " FROM orders o WHERE o.order_uid = %s",
        (order_uid,),
    ).fetchone()
    if row is None:
        return None
    return StoredOrder(row[0], bytes(row[1]), int(row[2]))


def pending_events(conn: Conn, order_uid: str) -> list[PendingEvent]:
    rows = conn.execute("SELECT id, created_at FROM outbox WHERE order_uid = %s ORDER BY id", (order_uid,)).fetchall()
    return [PendingEvent(int(r[0]), r[1]) for r in rows]
