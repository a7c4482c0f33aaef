"""Reading orders back: the stored rows of given orders (rebuilt into the message), and the recent-orders list."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from ordersctl.domain.order import Order
from ordersctl.domain.rows import (
    DELIVERY_COLUMNS,
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    PAYMENT_COLUMNS,
    DeliveryRow,
    ItemRow,
    OrderRow,
    OrderRows,
    PaymentRow,
    from_rows,
)

Conn = psycopg.Connection[Any]


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
# Where each table's columns end in a row of _SELECT_HEADS.
_ORDER_END = len(ORDER_COLUMNS)
_DELIVERY_END = _ORDER_END + len(DELIVERY_COLUMNS)


@dataclass(frozen=True)
class OrderSummary:
    """A line of the recent-orders list: no personal data."""

    order_uid: str
    track_number: str
    date_created: datetime
    amount: int
    currency: str
    items: int


class OrderReads:
    """Reads orders on a connection the caller owns."""

    def get(self, conn: Conn, order_uid: str) -> Order | None:
        found = self.get_many(conn, [order_uid])
        return found[0] if found else None

    def get_many(self, conn: Conn, uids: Sequence[str]) -> list[Order]:
        """Orders by uid (any order of result), rebuilt from the four tables with items in original order."""
        return [from_rows(rows) for rows in self.stored_rows(conn, uids).values()]

    def stored_rows(self, conn: Conn, uids: Sequence[str]) -> dict[str, OrderRows]:
        """The stored rows of these orders. Two queries sent together in one pipeline: one round trip."""
        if not uids:
            return {}
        with conn.pipeline(), conn.cursor() as heads_cur, conn.cursor() as items_cur:
            heads_cur.execute(_SELECT_HEADS, (list(uids),))
            items_cur.execute(_SELECT_ITEMS, (list(uids),))
            heads = heads_cur.fetchall()
            items: dict[str, list[ItemRow]] = {}
            for row in items_cur.fetchall():
                item = ItemRow._make(row)
                items.setdefault(item.order_uid, []).append(item)
        found: dict[str, OrderRows] = {}
        for head in heads:
            order = OrderRow._make(head[:_ORDER_END])
            found[order.order_uid] = OrderRows(
                order=order._replace(content_hash=bytes(order.content_hash)),  # bytea may come as memoryview
                delivery=DeliveryRow._make(head[_ORDER_END:_DELIVERY_END]),
                payment=PaymentRow._make(head[_DELIVERY_END:]),
                items=tuple(items.get(order.order_uid, [])),
            )
        return found

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
