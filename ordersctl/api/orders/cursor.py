"""The keyset cursor of ``GET /orders``: ``<date_created in microseconds since 1970 UTC>.<order_uid>``.

Every string that matches ``CURSOR_PATTERN`` (and ``CURSOR_MAX_LENGTH``) is accepted, so the OpenAPI document
can say exactly what a cursor is: a client or a fuzzer that follows the document is never refused. A time
beyond what a datetime holds is clamped, which still orders correctly against every stored order.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import falcon

from ordersctl.adapters.order_store.reads import OrderSummary
from ordersctl.domain.order import ORDER_UID_MAX_LENGTH, ORDER_UID_PATTERN

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_MIN_MICROS = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MICRO
_MAX_MICROS = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICRO
_DIGITS = 19  # a signed 64-bit count of microseconds, more than any datetime needs

# The order_uid part is the domain's pattern without its anchors (JSON Schema syntax, as the domain writes it).
CURSOR_PATTERN = rf"^-?[0-9]{{1,{_DIGITS}}}\.{ORDER_UID_PATTERN.removeprefix('^').removesuffix('$')}$"
CURSOR_MAX_LENGTH = 1 + _DIGITS + 1 + ORDER_UID_MAX_LENGTH
_CURSOR = re.compile(CURSOR_PATTERN)


def encode_cursor(summary: OrderSummary) -> str:
    return f"{(summary.date_created - _EPOCH) // _MICRO}.{summary.order_uid}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(date_created, order_uid) to continue before; 400 for anything that is not a cursor."""
    # fullmatch: Python's "$" would also match before a trailing newline, JSON Schema's does not.
    if len(cursor) > CURSOR_MAX_LENGTH or not _CURSOR.fullmatch(cursor):
        raise falcon.HTTPBadRequest(title="invalid cursor", description="before must be a `next` value")
    micros, uid = cursor.split(".", 1)
    return _EPOCH + min(max(int(micros), _MIN_MICROS), _MAX_MICROS) * _MICRO, uid
