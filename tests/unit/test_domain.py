"""The order model and rules: the canonical sample passes; every failure is precise and machine-readable."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ordersctl.domain.generator import INVALID_KINDS, OrderGenerator
from ordersctl.domain.order import Delivery, Item, Order, Payment
from ordersctl.domain.rows import (
    DELIVERY_COLUMNS,
    ITEM_COLUMNS,
    ORDER_COLUMNS,
    PAYMENT_COLUMNS,
    from_rows,
    same_content,
    to_rows,
)
from ordersctl.domain.rules import check_rules, decode_order
from ordersctl.errors import (
    DecodeError,
    InvalidJson,
    PoisonError,
    RuleViolation,
    SchemaViolation,
    TooManyItems,
)


def _canonical(canonical_bytes: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(canonical_bytes)
    return doc


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def test_canonical_sample_is_accepted(canonical_bytes: bytes) -> None:
    order = decode_order(canonical_bytes)
    assert order.order_uid == "b563feb7b2b84b6test"
    assert order.model_dump(mode="json") == _canonical(canonical_bytes)


def test_unknown_fields_are_ignored(canonical_bytes: bytes) -> None:
    doc = _canonical(canonical_bytes) | {"new_field": 1}
    doc["delivery"]["floor"] = "3"
    assert decode_order(_dump(doc)).order_uid == "b563feb7b2b84b6test"


@pytest.mark.parametrize(
    ("mutate", "path", "rule", "value_type"),
    [
        (lambda d: d["payment"].update(amount="1817"), "payment.amount", "int_type", "string"),
        (lambda d: d["payment"].update(amount=1817.0), "payment.amount", "int_type", "number"),
        (lambda d: d["items"][0].update(price=True), "items.0.price", "int_type", "boolean"),
        (lambda d: d.pop("payment"), "payment", "missing", "absent"),
        (lambda d: d.update(order_uid="bad uid!"), "order_uid", "string_pattern_mismatch", "string"),
        (lambda d: d.update(order_uid="x" * 65), "order_uid", "string_too_long", "string"),
        (lambda d: d["delivery"].update(email="nope"), "delivery.email", "string_pattern_mismatch", "string"),
        (lambda d: d["delivery"].update(phone="12345"), "delivery.phone", "string_pattern_mismatch", "string"),
        (lambda d: d["payment"].update(currency="usd"), "payment.currency", "string_pattern_mismatch", "string"),
        (lambda d: d["delivery"].update(name="a\x00b"), "delivery.name", "string_pattern_mismatch", "string"),
        (lambda d: d["delivery"].update(city="a\nb"), "delivery.city", "string_pattern_mismatch", "string"),
        (lambda d: d["delivery"].update(address="x" * 513), "delivery.address", "string_too_long", "string"),
        (lambda d: d["items"][0].update(nm_id=2**63), "items.0.nm_id", "less_than_equal", "integer"),
        (lambda d: d["payment"].update(custom_fee=-1), "payment.custom_fee", "greater_than_equal", "integer"),
        (lambda d: d["items"][0].update(sale=101), "items.0.sale", "less_than_equal", "integer"),
        (lambda d: d.update(items=[]), "items", "too_short", "array"),
        (lambda d: d.update(date_created="2021-11-26T06:22:19"), "date_created", "rfc3339", "string"),
        (lambda d: d.update(date_created="yesterday"), "date_created", "rfc3339", "string"),
        (lambda d: d.update(date_created="1637907727"), "date_created", "rfc3339", "string"),
        (lambda d: d.update(date_created="2021-11-26"), "date_created", "rfc3339", "string"),
        (lambda d: d.update(date_created=1637907727), "date_created", "datetime_type", "integer"),
        # A time that exists, but not in UTC within Python's years 1-9999 (it crashed the worker: OverflowError).
        (lambda d: d.update(date_created="0001-01-01T00:00:00+01:00"), "date_created", "rfc3339", "string"),
        (lambda d: d.update(date_created="9999-12-31T23:59:59-01:00"), "date_created", "rfc3339", "string"),
    ],
)
def test_schema_violations_are_precise(
    canonical_bytes: bytes, mutate: Any, path: str, rule: str, value_type: str
) -> None:
    doc = _canonical(canonical_bytes)
    mutate(doc)
    with pytest.raises(SchemaViolation) as caught:
        decode_order(_dump(doc))
    found = {(e.path, e.rule, e.value_type) for e in caught.value.errors}
    assert (path, rule, value_type) in found


def test_error_details_never_carry_the_value(canonical_bytes: bytes) -> None:
    doc = _canonical(canonical_bytes)
    doc["delivery"]["email"] = "secret-person@@example"
    with pytest.raises(SchemaViolation) as caught:
        decode_order(_dump(doc))
    assert "secret-person" not in json.dumps([e.as_dict() for e in caught.value.errors]) + str(caught.value)


@pytest.mark.parametrize(
    ("mutate", "paths"),
    [
        (lambda d: d["items"][0].update(total_price=318), {"items.0.total_price", "payment.goods_total"}),
        (lambda d: d["payment"].update(goods_total=318, amount=1818), {"payment.goods_total"}),
        (lambda d: d["payment"].update(amount=1816), {"payment.amount"}),
    ],
)
def test_business_rules(canonical_bytes: bytes, mutate: Any, paths: set[str]) -> None:
    doc = _canonical(canonical_bytes)
    mutate(doc)
    with pytest.raises(RuleViolation) as caught:
        decode_order(_dump(doc))
    assert {e.path for e in caught.value.errors} == paths
    assert caught.value.reason == "rule_violation"


def test_max_items_is_configurable(canonical_bytes: bytes) -> None:
    order = decode_order(canonical_bytes)
    check_rules(order, max_items=1)
    with pytest.raises(TooManyItems) as caught:
        check_rules(order.model_copy(update={"items": order.items * 2}), max_items=1)
    assert caught.value.reason == "too_many_items"


@pytest.mark.parametrize(
    ("raw", "error"),
    [(b"", DecodeError), (None, DecodeError), (b"\xff\xfe{}", DecodeError), (b"{not json", InvalidJson),
     (b'{"order_uid": "x"', InvalidJson), (b"[]", SchemaViolation), (b'"str"', SchemaViolation),
     (b'{"order_uid": "\xc3("}', DecodeError), (b"\xef\xbb\xbf{}", InvalidJson)],
)  # fmt: skip
def test_undecodable_messages(raw: bytes | None, error: type[PoisonError]) -> None:
    with pytest.raises(error) as caught:
        decode_order(raw)
    assert type(caught.value) is error
    assert caught.value.errors


def test_offset_dates_are_normalised_to_utc(canonical_bytes: bytes) -> None:
    doc = _canonical(canonical_bytes) | {"date_created": "2021-11-26T09:22:19+03:00"}
    order = decode_order(_dump(doc))
    assert order.model_dump(mode="json")["date_created"] == "2021-11-26T06:22:19Z"
    assert order.content_hash() == decode_order(canonical_bytes).content_hash()


# ---------------------------------------------------------------- properties

money = st.integers(min_value=0, max_value=10**9)


@st.composite
def valid_orders(draw: st.DrawFn) -> dict[str, Any]:
    seed = draw(st.integers(min_value=0, max_value=2**32))
    doc = OrderGenerator(seed=seed, people=3).order(items=draw(st.integers(min_value=1, max_value=12)))
    for item in doc["items"]:
        item["price"] = draw(money)
        item["sale"] = draw(st.integers(min_value=0, max_value=100))
        item["total_price"] = item["price"] * (100 - item["sale"]) // 100
        item["name"] = draw(st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs", "Cc")), max_size=40))
    pay = doc["payment"]
    pay["goods_total"] = sum(i["total_price"] for i in doc["items"])
    pay["delivery_cost"], pay["custom_fee"] = draw(money), draw(money)
    pay["amount"] = pay["goods_total"] + pay["delivery_cost"] + pay["custom_fee"]
    return doc


def test_the_rows_columns_are_the_models_fields_in_order() -> None:
    # The rows are built by reading these fields by name, and read back into the models the same way.
    assert ("order_uid", *Delivery.model_fields) == DELIVERY_COLUMNS
    assert ("order_uid", *Payment.model_fields) == PAYMENT_COLUMNS
    assert ("order_uid", "position", *Item.model_fields) == ITEM_COLUMNS
    assert set(ORDER_COLUMNS) - {"content_hash"} == set(Order.model_fields) - {"delivery", "payment", "items"}


@settings(max_examples=150, deadline=None)
@given(valid_orders())
def test_consistent_orders_pass_and_round_trip_through_rows(doc: dict[str, Any]) -> None:
    raw = _dump(doc)
    order = decode_order(raw)
    rows = to_rows(order)
    assert from_rows(rows) == order
    assert [item.position for item in rows.items] == list(range(len(order.items)))
    assert order.model_dump(mode="json") == doc
    # Fingerprints: of the bytes as they came, else of the canonical form; content compares apart from them.
    assert rows.content_hash == order.content_hash()
    from_raw = to_rows(order, raw)
    assert from_raw.content_hash == hashlib.sha256(raw).digest()
    other_bytes = json.dumps(dict(reversed(doc.items())), indent=1).encode()
    assert same_content(from_raw, to_rows(decode_order(other_bytes), other_bytes))
    changed = decode_order(_dump({**doc, "entry": doc["entry"] + "x"}))
    assert not same_content(from_raw, to_rows(changed, raw))


@settings(max_examples=150, deadline=None)
@given(valid_orders(), st.integers(min_value=1, max_value=10**6), st.sampled_from(["amount", "goods_total", "item"]))
def test_any_inconsistent_total_is_a_rule_violation(doc: dict[str, Any], delta: int, where: str) -> None:
    if where == "item":
        doc["items"][-1]["total_price"] += delta
    else:
        doc["payment"][where] += delta
    with pytest.raises(RuleViolation):
        decode_order(_dump(doc))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_either_an_order_or_a_precise_poison(raw: bytes) -> None:
    try:
        decode_order(raw)
    except PoisonError as exc:
        assert exc.reason and exc.errors
    else:  # pragma: no cover - random bytes are never a valid order
        raise AssertionError("random bytes accepted as an order")


def test_generator_is_deterministic_and_mixes_every_poison_class() -> None:
    first = list(OrderGenerator(seed=5).messages(400, invalid_ratio=0.2, duplicate_ratio=0.05))
    second = list(OrderGenerator(seed=5).messages(400, invalid_ratio=0.2, duplicate_ratio=0.05))
    assert first == second
    kinds = {m.kind for m in first}
    assert set(INVALID_KINDS) | {"valid", "duplicate"} == kinds
    for m in first:
        if m.kind in ("valid", "duplicate"):
            assert decode_order(m.value).order_uid == m.order_uid == m.key.decode()
        elif m.kind != "conflict":
            with pytest.raises(PoisonError) as caught:
                decode_order(m.value)
            assert caught.value.reason == m.kind


def test_generated_orders_use_several_locales() -> None:
    orders = [Order.model_validate_json(m.value) for m in OrderGenerator(seed=9).messages(200)]
    assert len({o.locale for o in orders}) >= 5
    assert len({o.payment.currency for o in orders}) >= 3
