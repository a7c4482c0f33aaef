"""Order <-> rows of the four tables. Column lists here are the single source for COPY and SELECT."""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from ordersctl.domain.order import Delivery, Item, Order, Payment, fingerprint

ORDER_COLUMNS = (
    "order_uid", "track_number", "entry", "locale", "internal_signature", "customer_id",
    "delivery_service", "shardkey", "sm_id", "date_created", "oof_shard", "content_hash",
)  # fmt: skip
DELIVERY_COLUMNS = ("order_uid", *Delivery.model_fields)
PAYMENT_COLUMNS = ("order_uid", *Payment.model_fields)
ITEM_COLUMNS = ("order_uid", "position", *Item.model_fields)

Row = tuple[Any, ...]
# attrgetter over the field names: several times faster than model_dump() on the hot ingest path.
_head = attrgetter(*ORDER_COLUMNS[:-1])
_delivery = attrgetter(*DELIVERY_COLUMNS[1:])
_payment = attrgetter(*PAYMENT_COLUMNS[1:])
_item = attrgetter(*ITEM_COLUMNS[2:])


@dataclass(frozen=True)
class OrderRows:
    """One order as table rows, in the column order above."""

    order: Row
    delivery: Row
    payment: Row
    items: tuple[Row, ...]


def to_rows(order: Order, message: bytes | None = None) -> OrderRows:
    """The rows of ``order``. The last column of the order row is its fingerprint: the SHA-256 of ``message``,
    the bytes it arrived as, or without them of its canonical JSON. Hashing the bytes as they are costs a
    fraction of re-serialising the order; a copy formatted differently is still recognised by content
    (``same_content``), only more slowly."""
    uid = order.order_uid
    digest = fingerprint(message) if message is not None else order.content_hash()
    return OrderRows(
        order=(*_head(order), digest),
        delivery=(uid, *_delivery(order.delivery)),
        payment=(uid, *_payment(order.payment)),
        items=tuple((uid, pos, *_item(item)) for pos, item in enumerate(order.items)),
    )


def same_content(a: OrderRows, b: OrderRows) -> bool:
    """The same order, whatever the bytes it came as (the fingerprint is left out)."""
    return (a.order[:-1], a.delivery, a.payment, a.items) == (b.order[:-1], b.delivery, b.payment, b.items)


def from_rows(order: Row, delivery: Row, payment: Row, items: list[Row]) -> Order:
    """Rebuild the order; items must come sorted by position. Rows are trusted (the database checked them)."""
    head = dict(zip(ORDER_COLUMNS, order, strict=True))
    head.pop("content_hash")
    return Order.model_validate(
        {
            **head,
            "delivery": dict(zip(DELIVERY_COLUMNS[1:], delivery[1:], strict=True)),
            "payment": dict(zip(PAYMENT_COLUMNS[1:], payment[1:], strict=True)),
            "items": [dict(zip(ITEM_COLUMNS[2:], row[2:], strict=True)) for row in items],
        }
    )
