"""The consumer's fast reading of an order message: the model's own fields and constraints, decoded by msgspec
straight from the bytes into the rows of the four tables (no model, no dicts), for the common case.

``read_plain`` answers None whenever it cannot vouch for the message; the caller then validates it with the model
(rules.decode_order), which gives the exact errors. What it accepts, the model accepts with the same values:
- every field keeps the model's type and constraints, built from the models' fields: lengths and bounds checked by
  msgspec while decoding, the patterns once decoded (Python's ``re``, each ``$`` made ``\\Z``: Python's ``$`` also
  matches before a final newline, pydantic's does not); strict: no "1" for 1, no 1.0 for 1, no null. A constraint,
  type, validator, alias or model setting this module does not translate stops the import (_check_model);
- the no-control-characters pattern of the text fields is not checked per string: JSON must escape a control
  character inside a string (both parsers refuse a raw one), except DEL, so a message with none of the escapes
  that make one (``\\n``, ``\\u001f``, ...) and no DEL byte has none in any string; a message with one goes to
  the model;
- keys the model does not know: msgspec skips their values without reading them as pydantic does (it would take
  invalid UTF-8 there, deeper nesting or longer numbers than pydantic's parser takes), so such a message is read by
  a second decoder only once it is valid UTF-8, has at most 200 brackets and no run of more than 4,300 digits;
- ``date_created`` must be the plain RFC 3339 form (ASCII digits, upper-case T or a space, Z or an offset), read
  by the same ``datetime.fromisoformat`` as the model, and put in UTC as the model does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from operator import attrgetter
from typing import Annotated, Any, get_args, get_origin

import msgspec
from annotated_types import Ge, Le, MinLen
from pydantic import AwareDatetime, BaseModel, StringConstraints

from ordersctl.domain.order import PRINTABLE, Order, fingerprint, rfc3339_utc
from ordersctl.domain.rows import ITEM_COLUMNS, ORDER_COLUMNS, DeliveryRow, ItemRow, OrderRow, OrderRows, PaymentRow

_PLAIN_RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
# pydantic's JSON parser refuses a document nested deeper than 201 levels (measured), and a number of more than
# 4,300 integer digits; msgspec does not look at them in a key's value it skips. A message with at most 200
# brackets is not nested that deep; one with a run of more digits (in a string, a false alarm) goes to the model.
_MAX_BRACKETS = 200
_MAX_DIGITS = 4300
_LONG_NUMBER = re.compile(rb"[0-9]{%d}" % (_MAX_DIGITS + 1))
# The order's own columns, in the orders row's order; its nested parts come after them in the decoded order.
_HEAD = tuple(c for c in ORDER_COLUMNS if c != "content_hash")
_DATE = _HEAD.index("date_created")
_new = tuple.__new__
_astuple = msgspec.structs.astuple


def _to_end(pattern: str) -> str:
    if not pattern.endswith("$") or pattern.endswith("\\$"):
        raise TypeError(f"pattern {pattern!r}: only patterns anchored with $ are translated")
    return pattern[:-1] + r"\Z"


def _meta(constraints: list[Any]) -> msgspec.Meta | None:
    """The model's constraints of one field as msgspec's; TypeError for any this module cannot translate."""
    found: dict[str, Any] = {}
    for c in constraints:
        if isinstance(c, StringConstraints):
            extra = {k for k, v in vars(c).items() if v is not None} - {"min_length", "max_length", "pattern"}
            if extra:
                raise TypeError(f"string constraints {sorted(extra)} are not translated")
            found.update(min_length=c.min_length, max_length=c.max_length)  # patterns: _patterns
        elif isinstance(c, Ge):
            found["ge"] = c.ge
        elif isinstance(c, Le):
            found["le"] = c.le
        elif isinstance(c, MinLen):
            found["min_length"] = c.min_length
        else:
            raise TypeError(f"constraint {c!r} is not translated")
    kept = {k: v for k, v in found.items() if v is not None}
    return msgspec.Meta(**kept) if kept else None


def _patterns(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """The text patterns of ``model``'s fields and parts, by dotted path, but the no-control-characters one."""
    found: list[tuple[str, str]] = []
    for name, info in model.model_fields.items():
        base = info.annotation
        if model is Order and name == "date_created":
            found.append((prefix + name, _PLAIN_RFC3339))
        elif isinstance(base, type) and issubclass(base, BaseModel):
            found += _patterns(base, f"{prefix}{name}.")
        elif get_origin(base) is list and _patterns(get_args(base)[0]):
            raise TypeError(f"{model.__name__}.{name}: patterns inside a list are not translated")
        for c in info.metadata:
            if isinstance(c, StringConstraints) and c.pattern is not None and c.pattern != PRINTABLE:
                found.append((prefix + name, str(c.pattern)))
    return found


def _field_type(model: type[BaseModel], name: str, forbid: bool) -> Any:
    if model is Order and name == "date_created":
        return str
    info = model.model_fields[name]
    base: Any = info.annotation
    if isinstance(base, type) and issubclass(base, BaseModel):
        base = _struct(base, tuple(base.model_fields), forbid)
    elif get_origin(base) is list:
        (element,) = get_args(base)
        base = list[_item_struct(element, forbid)]  # type: ignore[misc]
    elif base not in (str, int):
        raise TypeError(f"{model.__name__}.{name}: type {base!r} is not translated")
    meta = _meta(info.metadata)
    return Annotated[base, meta] if meta is not None else base


# What the translation assumes of every model besides its fields' constraints (the model's own settings).
_CONFIG = {"strict": True, "extra": "ignore", "frozen": True}
_VALIDATORS = ("validators", "field_validators", "root_validators", "model_validators")


def _check_model(model: type[BaseModel]) -> None:
    """TypeError unless ``model`` validates only by its fields' types and constraints, as translated here."""
    if dict(model.model_config) != _CONFIG:
        raise TypeError(f"{model.__name__}: model settings {dict(model.model_config)} are not translated")
    decorators = model.__pydantic_decorators__
    if any(getattr(decorators, kind) for kind in _VALIDATORS):
        raise TypeError(f"{model.__name__}: validators are not translated")
    for name, info in model.model_fields.items():
        if info.alias is not None or info.validation_alias is not None or not info.is_required():
            raise TypeError(f"{model.__name__}.{name}: aliases and defaults are not translated")
    if model is Order:
        date = model.model_fields["date_created"]
        if date.annotation is not AwareDatetime or [getattr(m, "func", None) for m in date.metadata] != [rfc3339_utc]:
            raise TypeError("Order.date_created: no longer the RFC 3339 text rfc3339_utc reads")


def _struct(model: type[BaseModel], names: tuple[str, ...], forbid: bool) -> type[msgspec.Struct]:
    """``model`` as a msgspec Struct with its fields in the order ``names`` gives (the rows' column order)."""
    _check_model(model)
    if set(names) != set(model.model_fields):
        raise TypeError(f"{model.__name__}: fields {sorted(names)} are not the model's")
    fields = [(name, _field_type(model, name, forbid)) for name in names]
    return msgspec.defstruct(model.__name__, fields, forbid_unknown_fields=forbid)


def _item_struct(model: type[BaseModel], forbid: bool) -> type[msgspec.Struct]:
    """An item as a Struct that is its own row: the order_uid and position first, set once decoded (a value the
    message gives them is overwritten, as the model ignores them), then the model's fields in column order."""
    _check_model(model)
    if ITEM_COLUMNS[2:] != tuple(model.model_fields):
        raise TypeError(f"{model.__name__}: fields are not the item row's columns")
    fields = [("order_uid", str, ""), ("position", int, 0)]
    fields += [(name, _field_type(model, name, forbid)) for name in ITEM_COLUMNS[2:]]  # type: ignore[misc]
    return msgspec.defstruct(model.__name__, fields, kw_only=True, forbid_unknown_fields=forbid)


def _decoder(forbid: bool) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(_struct(Order, (*_HEAD, "delivery", "payment", "items"), forbid))


# Every key known, the common case; and a message with keys the model does not know (see _decode).
_KNOWN_KEYS = _decoder(forbid=True)
_ANY_KEYS = _decoder(forbid=False)
# The patterns, checked in one loop once decoded: msgspec calls each from C through Python's API, at about
# twice the cost of this loop (docs/performance.md).
_PATHS, _PATTERNS = zip(*_patterns(Order), strict=True)
_PATTERNED = attrgetter(*_PATHS)
_CHECKS = tuple(re.compile(_to_end(pattern)).search for pattern in _PATTERNS)
# The JSON escapes that make a control character (JSON's \u is lower case, its hex digits of either case): one
# pattern with a literal first byte (a scan in C, several times faster than a search per escape), then, only where
# it found one, whether that backslash is itself escaped (JSON's backslash-backslash-n is a backslash and an n).
_CONTROL = re.compile(rb"\\(?:[bfnrt]|u00[01]|u007[fF])")
_CONTROL_EXACT = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\(?:[bfnrt]|u00[01]|u007[fF])")


def _has_control(value: bytes) -> bool:
    """Whether a string of ``value`` holds a control character (or a key does, or it is not JSON)."""
    if b"\x7f" in value:
        return True
    return b"\\" in value and _CONTROL.search(value) is not None and _CONTROL_EXACT.search(value) is not None


def _decode(value: bytes) -> Any:
    """The order as a Struct; None when the model must read it. Raises msgspec.DecodeError or ValueError."""
    if _has_control(value):
        return None
    try:
        return _KNOWN_KEYS.decode(value)
    except msgspec.ValidationError as exc:
        if not str(exc).startswith("Object contains unknown field"):
            raise
    # msgspec skips an unknown key's value without reading it as pydantic's parser does.
    if value.count(b"[") + value.count(b"{") > _MAX_BRACKETS:
        return None
    if len(value) > _MAX_DIGITS and _LONG_NUMBER.search(value) is not None:
        return None
    value.decode("utf-8")  # UnicodeDecodeError (a ValueError) for invalid UTF-8 there, as pydantic refuses it
    return _ANY_KEYS.decode(value)


def read_plain(value: bytes) -> OrderRows | None:
    """The rows of the order in ``value`` (its fingerprint: the SHA-256 of the bytes), the rules not yet checked;
    or None when the model must say (not valid, not read here, or a ``date_created`` not in the plain form)."""
    try:
        order = _decode(value)
        if order is None:
            return None
        for check, text in zip(_CHECKS, _PATTERNED(order), strict=True):
            if check(text) is None:
                return None
        created = datetime.fromisoformat(order.date_created)
        if created.tzinfo is not UTC:
            created = created.astimezone(UTC)
    except (msgspec.DecodeError, ValueError, OverflowError):  # OverflowError: outside years 1-9999 in UTC
        return None
    uid = order.order_uid
    head = _astuple(order)
    items = order.items
    for position, item in enumerate(items):
        item.order_uid = uid
        item.position = position
    return _new(
        OrderRows,
        (
            _new(OrderRow, (*head[:_DATE], created, *head[_DATE + 1 : len(_HEAD)], fingerprint(value))),
            _new(DeliveryRow, (uid, *_astuple(order.delivery))),
            _new(PaymentRow, (uid, *_astuple(order.payment))),
            tuple([_new(ItemRow, _astuple(item)) for item in items]),
        ),
    )
