"""Orders in PostgreSQL: batch writes (COPY, one transaction), reads that rebuild the message, the outbox."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.types.json import set_json_dumps
from pydantic_core import to_json

from ordersctl.adapters.postgres import is_data_error
from ordersctl.domain.order import Order
from ordersctl.domain.rows import (
    DELIVERY_COLUMNS,
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    PAYMENT_COLUMNS,
    OrderRows,
    from_rows,
    same_content,
    to_rows,
)
from ordersctl.domain.times import utc_z
from ordersctl.errors import DataRejected, OrderConflict, TransientError

Conn = psycopg.Connection[Any]
Outcome = Literal["stored", "duplicate"] | OrderConflict | DataRejected
_TABLES = (
    ("orders", ORDER_COLUMNS),
    ("deliveries", DELIVERY_COLUMNS),
    ("payments", PAYMENT_COLUMNS),
    ("items", ITEM_COLUMNS),
)


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


_COPY = {table: _copy_sql(table, cols) for table, cols in _TABLES}


def _cols(alias: str, columns: Sequence[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(c)) for c in columns)


_SELECT_HEADS = (
    sql.SQL(
        "SELECT {}, {}, {} FROM orders o JOIN deliveries d USING (order_uid) JOIN payments p USING (order_uid)"
        " WHERE o.order_uid = ANY(%s)"
    )
    .format(_cols("o", ORDER_COLUMNS), _cols("d", DELIVERY_COLUMNS), _cols("p", PAYMENT_COLUMNS))
    .as_string(None)
)
_SELECT_ITEMS = (
    sql.SQL("SELECT {} FROM items i WHERE i.order_uid = ANY(%s) ORDER BY i.order_uid, i.position")
    .format(_cols("i", ITEM_COLUMNS))
    .as_string(None)
)  # rendered once: composing on every request costs more than the query
_SELECT_FINGERPRINTS = "SELECT order_uid, content_hash FROM orders WHERE order_uid = ANY(string_to_array(%s, ','))"
# At most batch_size keys in a table that only grows: by index, always (for the transaction). The planner scanned
# the whole table, in parallel from ~100,000 orders (23 ms against 5 ms by index per 2,000 at 200,000 orders).
_BY_INDEX = "SELECT set_config('enable_seqscan', 'off', true), set_config('max_parallel_workers_per_gather', '0', true)"
_COPY_OUTBOX = "COPY outbox (order_uid, payload) FROM STDIN (FORMAT BINARY)"
_OUTBOX_TYPES = ["text", "jsonb"]
_TRACK, _CREATED = ORDER_COLUMNS.index("track_number"), ORDER_COLUMNS.index("date_created")
_AMOUNT, _CURRENCY = PAYMENT_COLUMNS.index("amount"), PAYMENT_COLUMNS.index("currency")


def event_payload(rows: OrderRows) -> dict[str, Any]:
    """The "order saved" event: identifiers and totals only, no personal data.

    Built from the rows being stored and written with them by COPY. (Rendering it in SQL with INSERT ...
    SELECT over the new rows cost PostgreSQL about four times as much CPU as this costs Python.)"""
    head, pay = rows.order, rows.payment
    return {
        "type": "order_saved",
        "order_uid": head[0],
        "track_number": head[_TRACK],
        "amount": pay[_AMOUNT],
        "currency": pay[_CURRENCY],
        "items": len(rows.items),
        "date_created": utc_z(head[_CREATED]),
        "content_hash": head[-1].hex(),
    }


class OrderStore:
    """Writes and reads orders on a connection the caller owns (from the pool)."""

    def save_batch(self, conn: Conn, orders: Sequence[Order]) -> list[Outcome]:
        """Store new orders in ONE transaction; returns one outcome per input, in input order.

        Same order_uid with the same content -> "duplicate" (no-op); different content -> OrderConflict;
        a row PostgreSQL rejects as data -> DataRejected for that order alone, the others are still stored.
        """
        return self.save_rows(conn, [to_rows(o) for o in orders])

    def save_rows(self, conn: Conn, rows: Sequence[OrderRows]) -> list[Outcome]:
        """``save_batch`` for orders already turned into rows (the consume worker does that off the store thread)."""
        outcomes: list[Outcome | None] = [None] * len(rows)
        with conn.transaction():
            # One comma-joined string rather than an array parameter: psycopg builds arrays in Python, a cost
            # per order, and an order_uid never holds a comma (domain rule [A-Za-z0-9_-]).
            uids = ",".join({r.order[0] for r in rows})
            conn.execute(_BY_INDEX)
            stored = dict(conn.execute(_SELECT_FINGERPRINTS, (uids,)).fetchall())
            first: dict[str, OrderRows] = {}  # new in this batch: a later copy compares against this one
            fresh: list[int] = []  # their positions: what to insert
            differ: list[int] = []  # stored under another fingerprint: compared field by field below
            for i, r in enumerate(rows):
                uid = r.order[0]
                if uid in first:
                    outcomes[i] = self._same_or_conflict(first[uid], r)
                elif uid not in stored:
                    first[uid] = r
                    fresh.append(i)
                elif bytes(stored[uid]) == r.order[-1]:
                    outcomes[i] = "duplicate"  # the very same bytes again: a redelivery
                else:
                    differ.append(i)
            if differ:
                # Rare: a conflict, or the same order sent again formatted differently.
                existing = self._fetch_rows(conn, [rows[i].order[0] for i in differ])
                for i in differ:
                    outcomes[i] = self._same_or_conflict(existing[rows[i].order[0]], rows[i])
            for i, problem in self._insert(conn, [(i, rows[i]) for i in fresh]):
                outcomes[i] = problem
            for i in fresh:
                if outcomes[i] is None:
                    outcomes[i] = "stored"
        return [o for o in outcomes if o is not None]

    @staticmethod
    def _same_or_conflict(kept: OrderRows, new: OrderRows) -> Outcome:
        if kept.order[-1] == new.order[-1] or same_content(kept, new):
            return "duplicate"
        return OrderConflict(f"order {new.order[0]} is stored with other content")

    def _insert(self, conn: Conn, batch: list[tuple[int, OrderRows]]) -> list[tuple[int, DataRejected]]:
        """COPY the batch; if PostgreSQL rejects a value, bisect under savepoints to isolate the bad orders."""
        if not batch:
            return []
        try:
            with conn.transaction():  # a savepoint inside the batch transaction
                self._copy(conn, batch)
            return []
        except pg_errors.UniqueViolation as exc:
            # Another worker stored one of these orders since our SELECT (a rebalance race): retry the batch,
            # the next attempt classifies it as duplicate or conflict.
            raise TransientError("order stored concurrently by another worker") from exc
        except psycopg.Error as exc:
            if not is_data_error(exc):
                raise
            if len(batch) == 1:
                return [(batch[0][0], DataRejected(f"PostgreSQL rejected the order ({exc.sqlstate})"))]
        middle = len(batch) // 2
        return self._insert(conn, batch[:middle]) + self._insert(conn, batch[middle:])

    def _copy(self, conn: Conn, batch: list[tuple[int, OrderRows]]) -> None:
        with conn.cursor() as cur:
            for table, pick in (("orders", "order"), ("deliveries", "delivery"), ("payments", "payment")):
                with cur.copy(_COPY[table]) as copy:
                    copy.set_types(_TYPES[table])
                    for _, r in batch:
                        copy.write_row(getattr(r, pick))
            with cur.copy(_COPY["items"]) as copy:
                copy.set_types(_TYPES["items"])
                for _, r in batch:
                    for item in r.items:
                        copy.write_row(item)
            set_json_dumps(to_json, context=cur)  # compact JSON from Rust, a few times cheaper than json.dumps
            with cur.copy(_COPY_OUTBOX) as copy:
                copy.set_types(_OUTBOX_TYPES)
                for _, r in batch:
                    copy.write_row((r.order[0], event_payload(r)))

    # ------------------------------------------------------------------ reads

    def get(self, conn: Conn, order_uid: str) -> Order | None:
        found = self.get_many(conn, [order_uid])
        return found[0] if found else None

    def get_many(self, conn: Conn, uids: Sequence[str]) -> list[Order]:
        """Orders by uid (any order of result), rebuilt from the four tables with items in original order."""
        return [from_rows(r.order, r.delivery, r.payment, list(r.items)) for r in self._fetch_rows(conn, uids).values()]

    def _fetch_rows(self, conn: Conn, uids: Sequence[str]) -> dict[str, OrderRows]:
        """The stored rows of these orders. Two queries sent together in one pipeline: one round trip."""
        if not uids:
            return {}
        with conn.pipeline(), conn.cursor() as heads_cur, conn.cursor() as items_cur:
            heads_cur.execute(_SELECT_HEADS, (list(uids),))
            items_cur.execute(_SELECT_ITEMS, (list(uids),))
            heads = heads_cur.fetchall()
            items: dict[str, list[tuple[Any, ...]]] = {}
            for row in items_cur.fetchall():
                items.setdefault(row[0], []).append(row)
        n_order, n_delivery = len(ORDER_COLUMNS), len(DELIVERY_COLUMNS)
        return {
            h[0]: OrderRows(
                order=(*h[: n_order - 1], bytes(h[n_order - 1])),
                delivery=h[n_order : n_order + n_delivery],
                payment=h[n_order + n_delivery :],
                items=tuple(items.get(h[0], [])),
            )
            for h in heads
        }

    def recent(self, conn: Conn, limit: int, before: tuple[datetime, str] | None = None) -> list[OrderSummary]:
        """Most recent first (date_created, order_uid), keyset-paginated."""
        query = (
            "SELECT o.order_uid, o.track_number, o.date_created, p.amount, p.currency,"
            " (SELECT count(*) FROM items i WHERE i.order_uid = o.order_uid)"
            " FROM orders o JOIN payments p USING (order_uid)"
        )
        params: list[Any] = []
        if before is not None:
            query += " WHERE (o.date_created, o.order_uid) < (%s, %s)"
            params.extend(before)
        query += " ORDER BY o.date_created DESC, o.order_uid DESC LIMIT %s"
        params.append(limit)
        return [OrderSummary(*row) for row in conn.execute(query.encode(), params).fetchall()]

    def iter_recent_json(self, conn: Conn, limit: int | None, page: int = 500) -> Iterator[list[tuple[str, bytes]]]:
        """Pages of (order_uid, order JSON), most recent first; all orders when ``limit`` is None."""
        before: tuple[datetime, str] | None = None
        left = limit
        while left is None or left > 0:
            size = page if left is None else min(page, left)
            summaries = self.recent(conn, size, before)
            if not summaries:
                return
            orders = self.get_many(conn, [s.order_uid for s in summaries])
            yield [(o.order_uid, o.model_dump_json().encode()) for o in orders]
            before = (summaries[-1].date_created, summaries[-1].order_uid)
            if left is not None:
                left -= len(summaries)
            if len(summaries) < size:
                return

    def count(self, conn: Conn) -> int:
        row = conn.execute("SELECT count(*) FROM orders").fetchone()
        return int(row[0]) if row else 0

    # ------------------------------------------------------------------ outbox

    def claim_unpublished(self, conn: Conn, limit: int) -> list[tuple[int, str, bytes]]:
        """Lock a page of unpublished events: (id, order_uid, event JSON with its ``event_id``).

        Other relays skip the locked rows (no double publishing). PostgreSQL renders the stored payload as text
        and the row's id joins it as its last member, so the relay ships bytes without parsing or re-serialising
        JSON. (Merging the id in SQL, ``payload || jsonb_build_object(...)``, built a new jsonb per row: it
        doubled the relay's share of the server's CPU.)"""
        return [
            (int(i), str(uid), b'%s, "event_id": %d}' % (payload.encode().removesuffix(b"}"), i))
            for i, uid, payload in conn.execute(
                "SELECT id, order_uid, payload::text FROM outbox ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
                (limit,),
            ).fetchall()
        ]

    def mark_published(self, conn: Conn, ids: Sequence[int]) -> None:
        """Published events leave the outbox (it holds only what is still to publish)."""
        conn.execute("DELETE FROM outbox WHERE id = ANY(%s)", (list(ids),))

    def pending_events(self, conn: Conn) -> int:
        row = conn.execute("SELECT count(*) FROM outbox").fetchone()
        return int(row[0]) if row else 0


@dataclass(frozen=True)
class OrderSummary:
    """A line of the recent-orders list: no personal data."""

    order_uid: str
    track_number: str
    date_created: datetime
    amount: int
    currency: str
    items: int
