"""Orders in PostgreSQL, by job: ``writes`` (a batch in one transaction), ``reads`` (rebuilding orders, recent
lists) and ``outbox`` (the "order saved" events written with the orders). Every part works on a connection the
caller owns; ``OrderStore`` groups them, and the Runtime builds it once."""

from __future__ import annotations

from dataclasses import dataclass

from ordersctl.adapters.order_store.outbox import Outbox
from ordersctl.adapters.order_store.reads import OrderReads
from ordersctl.adapters.order_store.writes import OrderWrites


@dataclass(frozen=True)
class OrderStore:
    """The three parts of the store, built together (``Runtime.store``)."""

    writes: OrderWrites
    reads: OrderReads
    outbox: Outbox
