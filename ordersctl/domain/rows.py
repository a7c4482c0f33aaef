"""Order <-> rows of the four tables. The row types here are the single source of the column lists for COPY
and SELECT: each row is a NamedTuple, so it is written to COPY as it is and read by column name."""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from ordersctl.domain.order import Order, fingerprint


class OrderRow(NamedTuple):
    """A row of ``orders``; ``content_hash`` is the order's fingerprint (see ``to_rows``)."""

    order_uid: str
    track_number: str
    entry: str
    locale: str
    internal_signature: str
    customer_id: str
    delivery_service: str
    shardkey: str
    sm_id: int
    date_created: datetime
    oof_shard: str
    content_hash: bytes


class DeliveryRow(NamedTuple):
    """A row of ``deliveries``: the order's ``Delivery`` under its order_uid."""

    order_uid: str
    name: str
    phone: str
    zip: str
    city: str
    address: str
    region: str
    email: str


class PaymentRow(NamedTuple):
    """A row of ``payments``: the order's ``Payment`` under its order_uid."""

    order_uid: str
    transaction: str
    request_id: str
    currency: str
    provider: str
    amount: int
    payment_dt: int
    bank: str
    delivery_cost: int
    goods_total: int
    custom_fee: int


class ItemRow(NamedTuple):
    """A row of ``items``: one ``Item`` under its order_uid and its position in the order."""

    order_uid: str
    position: int
    chrt_id: int
    track_number: str
    price: int
    rid: str
    name: str
    sale: int
    size: str
    total_price: int
    nm_id: int
    brand: str
    status: int


ORDER_COLUMNS = OrderRow._fields
DELIVERY_COLUMNS = DeliveryRow._fields
PAYMENT_COLUMNS = PaymentRow._fields
ITEM_COLUMNS = ItemRow._fields
# The models' own fields, in the rows' column order (tests/unit/test_domain.py checks them against the models).
_DELIVERY_FIELDS = DELIVERY_COLUMNS[1:]
_PAYMENT_FIELDS = PAYMENT_COLUMNS[1:]
_ITEM_FIELDS = ITEM_COLUMNS[2:]
# itemgetter over the column names of an order's dicts (with its order_uid, position and fingerprint put in them):
# each row is taken in one call, in C; tuple.__new__ makes it the NamedTuple without the keyword-taking constructor.
_order = itemgetter(*ORDER_COLUMNS)
_delivery = itemgetter(*DELIVERY_COLUMNS)
_payment = itemgetter(*PAYMENT_COLUMNS)
_item = itemgetter(*ITEM_COLUMNS)
_new = tuple.__new__


class OrderRows(NamedTuple):
    """One order as table rows (a NamedTuple: the consumer makes one per message, and a frozen dataclass's
    ``__init__`` costs several times a tuple's)."""

    order: OrderRow
    delivery: DeliveryRow
    payment: PaymentRow
    items: tuple[ItemRow, ...]

    @property
    def order_uid(self) -> str:
        return self.order.order_uid

    @property
    def content_hash(self) -> bytes:
        return self.order.content_hash


def to_rows(order: Order, message: bytes | None = None) -> OrderRows:
    """The rows of ``order``. The order row's ``content_hash`` is its fingerprint: the SHA-256 of ``message``,
    the bytes it arrived as, or without them of its canonical JSON. Hashing the bytes as they are costs a
    fraction of re-serialising the order; a copy formatted differently is still recognised by content
    (``same_content``), only more slowly."""
    digest = fingerprint(message) if message is not None else order.content_hash()
    return rows_of(order.model_dump(), digest)


def rows_of(doc: dict[str, Any], digest: bytes) -> OrderRows:
    """The rows of a valid order given as plain dicts (``Order.model_dump()``); ``digest`` is
    its fingerprint. The dicts are taken over: the keys each row needs besides the order's fields go into them."""
    uid = doc["order_uid"]
    doc["content_hash"] = digest
    delivery, payment = doc["delivery"], doc["payment"]
    delivery["order_uid"] = payment["order_uid"] = uid
    items = doc["items"]
    for position, item in enumerate(items):
        item["order_uid"] = uid
        item["position"] = position
    return _new(
        OrderRows,
        (
            _new(OrderRow, _order(doc)),
            _new(DeliveryRow, _delivery(delivery)),
            _new(PaymentRow, _payment(payment)),
            tuple([_new(ItemRow, _item(item)) for item in items]),
        ),
    )


def same_content(a: OrderRows, b: OrderRows) -> bool:
    """The same order, whatever the bytes it came as (the fingerprint is left out)."""
    return (a.order._replace(content_hash=b""), a.delivery, a.payment, a.items) == (
        b.order._replace(content_hash=b""),
        b.delivery,
        b.payment,
        b.items,
    )


def from_rows(rows: OrderRows) -> Order:
    """Rebuild the order; its items must come sorted by position. Rows are trusted (the database checked them)."""
    head = rows.order._asdict()
    del head["content_hash"]
    return Order.model_validate(
        {
            **head,
            "delivery": _fields(rows.delivery._asdict(), _DELIVERY_FIELDS),
            "payment": _fields(rows.payment._asdict(), _PAYMENT_FIELDS),
            "items": [_fields(item._asdict(), _ITEM_FIELDS) for item in rows.items],
        }
    )


def _fields(row: dict[str, object], names: tuple[str, ...]) -> dict[str, object]:
    return {name: row[name] for name in names}
