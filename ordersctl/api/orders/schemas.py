"""Response models of the API that are not the order itself (the order is ``domain.order.Order``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from ordersctl.api.orders.cursor import CURSOR_MAX_LENGTH, CURSOR_PATTERN
from ordersctl.domain.order import OrderUid

Cursor = Annotated[str, StringConstraints(max_length=CURSOR_MAX_LENGTH, pattern=CURSOR_PATTERN)]


class ErrorBody(BaseModel):
    """Every error response."""

    error: str
    detail: str


class OrderSummaryOut(BaseModel):
    """One line of the recent-orders list."""

    order_uid: OrderUid
    track_number: str
    date_created: str
    amount: int
    currency: str
    items: int


class OrderPage(BaseModel):
    """A page of recent orders; pass ``next`` as ``before`` for the following page (null at the end)."""

    items: list[OrderSummaryOut]
    next: Cursor | None


class Health(BaseModel):
    """Liveness and readiness."""

    status: Literal["ok", "degraded", "unavailable", "draining"]
    postgres: Literal["up", "down"] | None = None
    redis: Literal["up", "down", "disabled"] | None = None
