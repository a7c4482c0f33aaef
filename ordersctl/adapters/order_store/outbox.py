"""The outbox: the "order saved" event of each new order, written in the order's transaction, claimed and
deleted by the relays once Kafka confirmed it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from pydantic_core import to_json

from ordersctl.adapters import citus
from ordersctl.domain.rows import OrderRows
from ordersctl.domain.times import utc_z

Conn = psycopg.Connection[Any]
COPY_OUTBOX = "COPY outbox (order_uid, payload) FROM STDIN (FORMAT BINARY)"
# With tracing on, each event's traceparent too (sql/0006_outbox_traceparent.sql).
COPY_TRACED_OUTBOX = "COPY outbox (order_uid, payload, traceparent) FROM STDIN (FORMAT BINARY)"
# Plain PostgreSQL: each relay locks its page's rows, the others skip them (relays publish side by side).
_CLAIM_ROWS = "SELECT id, order_uid, payload::text, traceparent FROM outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED"
# Citus refuses row locks across shards. One relay at a time claims instead: the holder of this lock, a
# transaction-scoped advisory lock on the coordinator (so it also works behind a transaction pooler), reads the
# page without row locks; the others find the lock taken and wait for their next poll (docs/scaling.md).
_RELAY_LOCK_KEY = 7_316_043_522
_TAKE_RELAY_LOCK = "SELECT pg_try_advisory_xact_lock(%s)"
_READ_PAGE = "SELECT id, order_uid, payload::text, traceparent FROM outbox ORDER BY id LIMIT %s"
_DELETE_PUBLISHED = "DELETE FROM outbox WHERE id = ANY(string_to_array(%s, ',')::bigint[])"


# The "order saved" event: identifiers and totals only, no personal data. Every value but the track number is
# JSON-safe as it is (an order_uid, a currency code, digits, a UTC time, hex); the track number is JSON-encoded.
_EVENT = (
    '{"type":"order_saved","order_uid":"%s","track_number":%s,"amount":%d,"currency":"%s","items":%d,'
    '"date_created":"%s","content_hash":"%s"}'
)
# Binary COPY hands each value to the column type's receive function; jsonb's takes a format version (1) and the
# JSON text. Written as bytes (the bytea dumper passes them through), the event needs no JSON dumper per row.
OUTBOX_TYPES = ["text", "bytea"]
TRACED_OUTBOX_TYPES = [*OUTBOX_TYPES, "text"]
JSONB_V1 = b"\x01"


def event_json(rows: OrderRows) -> str:
    """The "order saved" event of these rows, as JSON text.

    Rendered from the rows being stored and written with them by COPY. (Rendering it in SQL with INSERT ...
    SELECT over the new rows cost PostgreSQL about four times as much CPU as this costs Python; a dict passed
    through a JSON encoder and psycopg's jsonb dumper cost this side about three times as much as the template.)"""
    head, pay = rows.order, rows.payment
    track = to_json(head.track_number).decode()
    created = utc_z(head.date_created)
    return _EVENT % (head.order_uid, track, pay.amount, pay.currency, len(rows.items), created, head.content_hash.hex())


def copy_events(cur: psycopg.Cursor[Any], batch: Sequence[OrderRows], traceparents: Mapping[str, str] | None) -> None:
    """The events of the orders just copied, by COPY in the same transaction; with ``traceparents`` (tracing on),
    each with its order span's traceparent."""
    if traceparents is None:
        with cur.copy(COPY_OUTBOX) as copy:
            copy.set_types(OUTBOX_TYPES)
            write = copy.write_row
            for rows in batch:
                write((rows.order_uid, JSONB_V1 + event_json(rows).encode()))
        return
    with cur.copy(COPY_TRACED_OUTBOX) as copy:
        copy.set_types(TRACED_OUTBOX_TYPES)
        for rows in batch:
            copy.write_row((rows.order_uid, JSONB_V1 + event_json(rows).encode(), traceparents.get(rows.order_uid)))


class Outbox:
    """Claims pages of pending events and deletes the published ones. How it claims depends on the database,
    learnt from the first connection: row locks on plain PostgreSQL, one claiming relay at a time on Citus."""

    def __init__(self) -> None:
        self._one_at_a_time: bool | None = None

    @property
    def claims_alone(self) -> bool:
        """One relay claims at a time (Citus): while it holds the claim, the others' own rows wait for it."""
        return bool(self._one_at_a_time)

    def _claim_query(self, conn: Conn) -> str | None:
        """The query that reads the page, or None when another relay holds the claim (Citus)."""
        if self._one_at_a_time is None:
            self._one_at_a_time = citus.is_citus(conn)
        if not self._one_at_a_time:
            return _CLAIM_ROWS
        row = conn.execute(_TAKE_RELAY_LOCK, (_RELAY_LOCK_KEY,)).fetchone()
        return _READ_PAGE if row and row[0] else None

    def claim_unpublished(self, conn: Conn, limit: int) -> list[tuple[int, str, bytes, str | None]]:
        """Lock a page of unpublished events: (id, order_uid, event JSON with its ``event_id``, the traceparent
        of the order's span or None).

        Other relays skip the locked rows, or the whole outbox on Citus (no double publishing): the claim lasts
        until the caller's transaction ends. PostgreSQL renders the stored payload as text
        and the row's id joins it as its last member, so the relay ships bytes without parsing or re-serialising
        JSON. (Merging the id in SQL, ``payload || jsonb_build_object(...)``, built a new jsonb per row: it
        doubled the relay's share of the server's CPU.)"""
        query = self._claim_query(conn)
        if query is None:
            return []
        return [
            (int(i), str(uid), b'%s, "event_id": %d}' % (payload.encode().removesuffix(b"}"), i), traceparent)
            for i, uid, payload, traceparent in conn.execute(query, (limit,)).fetchall()
        ]

    def mark_published(self, conn: Conn, ids: Sequence[int]) -> None:
        """Published events leave the outbox (it holds only what is still to publish)."""
        # One comma-joined string: psycopg builds an array parameter in Python, a cost per event.
        conn.execute(_DELETE_PUBLISHED, (",".join(map(str, ids)),))

    def pending_events(self, conn: Conn) -> int:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0
