"""The consumer's fast reading (domain/wire.py, rules.decode_rows) reaches what the model reaches: the same rows for
a valid order, the same poison error (class, message, field errors) for any other."""

from __future__ import annotations

import json
from typing import Any

import pytest
from annotated_types import Gt, MultipleOf
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ConfigDict, Field, StringConstraints, field_validator

from ordersctl.domain import wire
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.order import Item
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
        ("date_created", "0001-01-01T00:00:00+01:00"),  # before year 1 in UTC
        ("date_created", "9999-12-31T23:59:59-01:00"),  # after year 9999 in UTC
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


def _with_field(canonical_bytes: bytes, field: str, raw_value: bytes) -> bytes:
    """The canonical order with ``field`` (top level, new or not) set to a raw JSON text, bytes as given."""
    doc = json.loads(canonical_bytes)
    doc.pop(field, None)
    return _compact(doc)[:-1] + b',"' + field.encode() + b'":' + raw_value + b"}"


@pytest.mark.parametrize(
    ("field", "raw_value"),
    [
        ("note", b'"plain"'),  # a key the model does not know: ignored by both
        ("note", b'{"a":[1,{"b":null}],"c":1.5e3}'),
        ("note", b'"\xff"'),  # invalid UTF-8 where only a skipped value has it: refused as pydantic refuses it
        ("note", b'"\xed\xa0\x80"'),  # an encoded surrogate
        ("note", b"[" * 260 + b"]" * 260),  # deeper than pydantic's parser goes
        ("note", b"[" * 150 + b"]" * 150),  # not as deep: both read it
        ("note", b"1" * 4301),  # more integer digits than pydantic's parser takes
        ("note", b"[-" + b"9" * 4301 + b".5]"),
        ("note", b"1" * 4300),
        ("note", b"NaN"),  # pydantic's parser reads it, msgspec's does not: left to the model
        ("note", b'"a\\nb"'),  # a control character in a skipped value: left to the model, which takes it
        ("entry", b'"a\\u001fb"'),
        ("entry", b'"a\\u007Fb"'),  # DEL, escaped in upper-case hex
        ("entry", b'"a\\\\nb"'),  # an escaped backslash before an n: no control character
        ("entry", b'"\\u0436"'),  # non-ASCII written as an escape, as json.dumps does by default
        ("entry", b'"\\ud83d\\ude00"'),
        ("entry", b'"\\ud800"'),  # a lone surrogate
        ("entry", b'"\xff"'),
        ("entry", b"null"),
        ("entry", b'"' + "ж".encode() * 64 + b'"'),  # 64 characters of 2 bytes: the length is in characters
        ("entry", b'"' + "ж".encode() * 65 + b'"'),
        ("sm_id", b"1.0"),
        ("sm_id", b"true"),
        ("sm_id", b"-0"),
        ("sm_id", b"1e2"),
        ("sm_id", b"9223372036854775808"),
        ("sm_id", b'"1"'),
    ],
)
def test_raw_json_gets_the_models_outcome(canonical_bytes: bytes, field: str, raw_value: bytes) -> None:
    raw = _with_field(canonical_bytes, field, raw_value)
    assert _fast(raw) == _through_model(raw)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("delivery", "phone"), "+79001234567\n"),  # Python's $ matches before a final newline, pydantic's not
        (("delivery", "email"), "a@b.ru\n"),
        (("order_uid",), "abc\n"),
        (("payment", "currency"), "RUB\n"),
        (("delivery", "phone"), "+79001234567"),
        (("payment", "currency"), "rub"),
        (("items", 0, "sale"), 101),
        (("items", 0, "status"), -(2**63)),
        (("items", 0, "status"), -(2**63) - 1),
        (("items",), []),
        (("delivery", "extra"), "x"),  # an unknown key inside a part of the order
        (("items", 0, "extra"), {"deep": [1, 2]}),
        # keys the model does not know but the fast reading's item has (its row's): ignored by both
        (("items", 0, "position"), 7),
        (("items", 0, "position"), "x"),
        (("items", 0, "order_uid"), "another"),
    ],
)
def test_nested_edge_cases_get_the_models_outcome(canonical_bytes: bytes, path: tuple[Any, ...], value: object) -> None:
    doc = json.loads(canonical_bytes)
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    for raw in (_compact(doc), json.dumps(doc).encode()):
        assert _fast(raw) == _through_model(raw)


def test_a_message_with_unknown_keys_is_read_fast(canonical_bytes: bytes) -> None:
    raw = _with_field(canonical_bytes, "schema_version", b'{"major":2,"tags":["a","b"]}')
    assert read_plain(raw) is not None
    assert _fast(raw) == _through_model(raw)


def test_a_constraint_the_fast_reading_cannot_translate_stops_it() -> None:
    for constraint in (Gt(0), MultipleOf(2), StringConstraints(to_upper=True)):
        with pytest.raises(TypeError):
            wire._meta([constraint])
    with pytest.raises(TypeError):
        wire._to_end("^[a-z]+")  # not anchored at the end: its meaning would change


def test_a_model_setting_or_validator_the_fast_reading_cannot_translate_stops_it() -> None:
    class Loose(Item):
        model_config = ConfigDict(strict=False)

    class Checked(Item):
        @field_validator("brand")
        @classmethod
        def _upper(cls, value: str) -> str:
            return value.upper()

    class Aliased(Item):
        brand: str = Field(alias="Brand")

    for model in (Loose, Checked, Aliased):
        with pytest.raises(TypeError):
            wire._check_model(model)
    wire._check_model(Item)  # the real one passes
