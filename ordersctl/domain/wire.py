"""The consumer's fast reading of an order message: the model's own field types, validated straight from the bytes
into plain dicts and lists (no model objects), for the common case of a plainly written message.

``read_plain`` answers None whenever it cannot vouch for the message; the caller then validates it with the model
(rules.decode_order), which gives the exact errors. What it accepts, the model accepts with the same values:
- every field keeps the model's type and constraints (built from ``Order.model_fields``), strict, extra keys ignored;
- the no-control-characters pattern of the text fields is checked once for the whole message instead of per
  string when it can be: JSON must escape a control character inside a string (the parser refuses a raw one),
  except DEL, so a message with no backslash and no DEL byte has none in any string (others are checked per string);
- ``date_created`` must be the plain RFC 3339 form (ASCII digits, upper-case T or a space, Z or an offset), read
  by the same ``datetime.fromisoformat`` as the model, and put in UTC as the model does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from types import GenericAlias
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from ordersctl.domain.order import PRINTABLE, Order

_PLAIN_RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
_CONFIG = ConfigDict(strict=True, extra="ignore")


def _without_printable(meta: object) -> object:
    if isinstance(meta, StringConstraints) and meta.pattern == PRINTABLE:
        return StringConstraints(min_length=meta.min_length, max_length=meta.max_length)
    return meta


def _plain_type(annotation: Any, printable: bool) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _as_typed_dict(annotation, printable)
    if get_origin(annotation) is list:
        return GenericAlias(list, tuple(_plain_type(a, printable) for a in get_args(annotation)))
    return annotation


def _as_typed_dict(model: type[BaseModel], printable: bool) -> type:
    """``model`` as a TypedDict of the same field types; ``printable``: with the text fields' own pattern check."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if model is Order and name == "date_created":
            fields[name] = Annotated[str, StringConstraints(pattern=_PLAIN_RFC3339)]
            continue
        meta = info.metadata if printable else [_without_printable(m) for m in info.metadata]
        base = _plain_type(info.annotation, printable)
        fields[name] = Annotated[(base, *meta)] if meta else base
    plain: type = TypedDict(model.__name__, fields)  # type: ignore[misc]
    return with_config(_CONFIG)(plain)


_PLAIN_ORDER: TypeAdapter[dict[str, Any]] = TypeAdapter(_as_typed_dict(Order, printable=False))
_ESCAPED_ORDER: TypeAdapter[dict[str, Any]] = TypeAdapter(_as_typed_dict(Order, printable=True))


def read_plain(value: bytes) -> dict[str, Any] | None:
    """The order in ``value`` as nested dicts (``date_created`` a UTC datetime), or None when the model must say
    (not valid, or a ``date_created`` not in the plain form)."""
    escapes = b"\\" in value or b"\x7f" in value
    try:
        doc = (_ESCAPED_ORDER if escapes else _PLAIN_ORDER).validate_json(value)
        created = datetime.fromisoformat(doc["date_created"])
    except (ValidationError, ValueError):
        return None
    doc["date_created"] = created if created.tzinfo is UTC else created.astimezone(UTC)
    return doc
