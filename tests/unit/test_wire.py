"""The consumer's fast reading (domain/wire.py, rules.decode_rows) reaches what the model reaches: the same rows for
a valid order, the same poison error (class, message, field errors) for any other."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rows import OrderRows, to_rows
from ordersctl.domain.rules import decode_order, decode_rows
from ordersctl.domain.wire import read_plain
from ordersctl.errors import PoisonError
from tests.unit.test_domain import valid_orders


def _through_model(raw: bytes, max_items: int = 1000) -> OrderRows | tuple[type, str, tuple[Any, ...]]:
    try:
        return to_rows(decode_order(raw, max_items), raw)
    except PoisonError as exc:
        return type(exc), str(exc), exc.errors


def _fast(raw: bytes, max_items: int = 1000) -> OrderRows | tuple[type, str, tuple[Any, ...]]:
    try:
        return decode_rows(raw, max_items)
    except PoisonError as exc:
        return type(exc), str(exc), exc.errors


def _compact(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


@settings(max_examples=150, deadline=None)
@given(valid_orders(), st.booleans())
def test_a_valid_order_gives_the_models_rows(doc: dict[str, Any], ascii_only: bool) -> None:
    raw = json.dumps(doc).encode() if ascii_only else _compact(doc)
    assert read_plain(raw) is not None  # the fast reading is what is tested here, not the fallback
    rows = decode_rows(raw)
    assert rows == to_rows(decode_order(raw), raw)
    assert rows.order.date_created.tzinfo == decode_order(raw).date_created.tzinfo


def test_every_generated_message_gets_the_models_outcome() -> None:
    for msg in OrderGenerator(seed=31).messages(600, invalid_ratio=0.5):
        assert _fast(msg.value) == _through_model(msg.value), msg.kind
        assert _fast(msg.value, max_items=2) == _through_model(msg.value, max_items=2), msg.kind


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date_created", "2021-11-26t06:22:19z"),  # lower case: the model reads it, the fast reading leaves it
        ("date_created", "2021-11-26T09:22:19.1234567+03:00"),  # an offset and 7 digits: to UTC, microseconds
        ("date_created", "2021-11-26 06:22:19Z"),
        ("date_created", "2021-11-26T23:59:60Z"),  # a leap second: refused by both
        ("date_created", "2021-13-26T06:22:19Z"),
        ("date_created", "2021-11-26T06:22:19Z\n"),
        ("date_created", "١٩٩٩-11-26T06:22:19Z"),  # digits, but not ASCII ones
        ("date_created", "1637907727"),
        ("entry", "a\x7fb"),  # DEL travels unescaped in JSON
        ("entry", "a\x01b"),  # escaped by JSON (\u0001)
        ("entry", 'a"b\\c'),  # escaped, and allowed
        ("entry", "x" * 65),
        ("entry", 5),
    ],
)
def test_edge_cases_get_the_models_outcome(canonical_bytes: bytes, field: str, value: object) -> None:
    doc = json.loads(canonical_bytes)
    doc[field] = value
    for raw in (_compact(doc), json.dumps(doc).encode()):
        assert _fast(raw) == _through_model(raw)
