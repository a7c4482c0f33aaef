"""Business rules over a well-typed order, and the decoding of raw message bytes into a valid Order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from ordersctl.domain.order import Order
from ordersctl.domain.rows import OrderRows, to_rows
from ordersctl.domain.wire import read_plain
from ordersctl.errors import (
    DecodeError,
    FieldError,
    InvalidJson,
    RuleViolation,
    SchemaViolation,
    TooManyItems,
)

DEFAULT_MAX_ITEMS = 1000
_JSON_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "NoneType": "null",
               "dict": "object", "list": "array", "bytes": "string"}  # fmt: skip


class _Line(Protocol):
    """An item as the rules read it: a model's Item or an ItemRow."""

    @property
    def price(self) -> int: ...
    @property
    def sale(self) -> int: ...
    @property
    def total_price(self) -> int: ...


def check_rules(order: Order | OrderRows, max_items: int = DEFAULT_MAX_ITEMS) -> None:
    """Raise RuleViolation (or TooManyItems) listing every broken rule; ``order`` as a model or as its rows (whose
    items and payment have the model's field names)."""
    items: Sequence[_Line] = order.items
    pay = order.payment
    if len(items) > max_items:
        raise TooManyItems(
            f"order has {len(items)} items, more than the maximum {max_items}",
            (FieldError("items", "max_items", "array", f"at most {max_items} items"),),
        )
    errors: list[FieldError] = []
    goods = 0
    for i, item in enumerate(items):
        total = item.total_price
        goods += total
        if total != item.price * (100 - item.sale) // 100:
            errors.append(
                FieldError(
                    f"items.{i}.total_price", "item_total_price", "integer", "must be price * (100 - sale) // 100"
                )
            )
    if pay.goods_total != goods:
        errors.append(
            FieldError("payment.goods_total", "goods_total", "integer", "must be the sum of items' total_price")
        )
    if pay.amount != pay.goods_total + pay.delivery_cost + pay.custom_fee:
        errors.append(
            FieldError("payment.amount", "amount", "integer", "must be goods_total + delivery_cost + custom_fee")
        )
    if errors:
        raise RuleViolation("; ".join(f"{e.path}: {e.rule}" for e in errors), tuple(errors))


def schema_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """pydantic errors as FieldErrors: path, rule and the JSON type of the value, never the value itself."""
    found = []
    for err in exc.errors(include_url=False, include_context=False):
        path = ".".join(str(p) for p in err["loc"]) or "$"
        value_type = _JSON_TYPES.get(type(err.get("input")).__name__, "unknown")
        if err["type"] == "missing":
            value_type = "absent"
        found.append(FieldError(path, err["type"], value_type, err["msg"]))
    return tuple(found)


def decode_order(value: bytes | None, max_items: int = DEFAULT_MAX_ITEMS) -> Order:
    """Bytes off the wire -> a valid Order, or the PoisonError that says precisely why not."""
    if not value:
        raise DecodeError("empty message", (FieldError("$", "empty", "absent", "the message has no value"),))
    try:
        order = Order.model_validate_json(value)
    except ValidationError as exc:
        errors = schema_errors(exc)
        if any(e.rule == "json_invalid" for e in errors):
            # The parser rejects bad UTF-8 as bad JSON; tell the two apart only now, off the hot path.
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as bad:
                raise DecodeError(
                    f"not UTF-8 at byte {bad.start}", (FieldError("$", "utf8", "bytes", "invalid UTF-8"),)
                ) from None
            raise InvalidJson("not a JSON document", errors) from None
        raise SchemaViolation("; ".join(f"{e.path}: {e.rule}" for e in errors[:5]), errors) from None
    check_rules(order, max_items)
    return order


def decode_rows(value: bytes | None, max_items: int = DEFAULT_MAX_ITEMS) -> OrderRows:
    """Bytes off the wire -> the rows of a valid order (fingerprint: the SHA-256 of the bytes), or the PoisonError
    that says precisely why not: ``decode_order``'s outcome, reached without model objects for a plainly written
    message (wire.read_plain), through the model otherwise."""
    rows = read_plain(value) if value else None
    if rows is None:
        order = decode_order(value, max_items)
        assert value is not None  # decode_order refuses an empty message
        return to_rows(order, value)
    check_rules(rows, max_items)
    return rows


def errors_json(errors: tuple[FieldError, ...]) -> list[dict[str, Any]]:
    return [e.as_dict() for e in errors]
