"""What the OpenAPI document says about order_uid and the cursor is exactly what the API accepts."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import falcon
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from ordersctl.adapters.order_store.reads import OrderSummary
from ordersctl.api.orders.cursor import CURSOR_MAX_LENGTH, CURSOR_PATTERN, decode_cursor, encode_cursor
from ordersctl.domain.order import ORDER_UID_MAX_LENGTH, ORDER_UID_PATTERN, OrderUid, is_order_uid


def _summary(when: datetime, uid: str) -> OrderSummary:
    return OrderSummary(uid, "TRACK", when, 100, "USD", 1)


@given(st.from_regex(CURSOR_PATTERN, fullmatch=True).filter(lambda c: len(c) <= CURSOR_MAX_LENGTH))
def test_every_cursor_the_document_allows_is_accepted(cursor: str) -> None:
    when, uid = decode_cursor(cursor)
    assert when.tzinfo is not None and uid == cursor.split(".", 1)[1]


@given(st.datetimes(timezones=st.just(UTC)), st.from_regex(ORDER_UID_PATTERN, fullmatch=True).map(lambda u: u[:64]))
def test_cursor_round_trips_to_the_microsecond(when: datetime, uid: str) -> None:
    assert decode_cursor(encode_cursor(_summary(when, uid))) == (when, uid)


@pytest.mark.parametrize(
    "cursor",
    ["", "!!notacursor", "12", "12.", ".abc", "1.2.3", "12.abc\n", "1e5.abc", "12.é", "1" * 20 + ".a",
     "1." + "a" * (CURSOR_MAX_LENGTH - 1)],
)  # fmt: skip
def test_anything_else_is_a_400(cursor: str) -> None:
    assert not (re.fullmatch(CURSOR_PATTERN, cursor) and len(cursor) <= CURSOR_MAX_LENGTH)
    with pytest.raises(falcon.HTTPBadRequest):
        decode_cursor(cursor)


def test_times_beyond_a_datetime_are_clamped_not_refused() -> None:
    assert decode_cursor("9" * 19 + ".a")[0] == datetime.max.replace(tzinfo=UTC)
    assert decode_cursor("-" + "9" * 19 + ".a")[0] == datetime.min.replace(tzinfo=UTC)


_ORDER_UID = TypeAdapter(OrderUid)


def _model_accepts(text: str) -> bool:
    try:
        _ORDER_UID.validate_python(text)
    except ValidationError:
        return False
    return True


@given(st.one_of(st.text(max_size=ORDER_UID_MAX_LENGTH + 2),
                 st.from_regex(ORDER_UID_PATTERN, fullmatch=True), st.from_regex(ORDER_UID_PATTERN)))  # fmt: skip
def test_the_api_accepts_exactly_the_order_uids_the_domain_model_accepts(text: str) -> None:
    # pydantic checks the pattern with Rust's regex engine, the API with Python's: they must agree.
    assert is_order_uid(text) == _model_accepts(text)
