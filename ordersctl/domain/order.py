"""The order message (pydantic v2, strict): types and per-field formats. Cross-field rules are in rules.py."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

BIGINT_MAX = 2**63 - 1
_HASH_PIECE = 2000
BIGINT_MIN = -(2**63)
# No NUL or other control characters anywhere in a string (they break logs, terminals and PostgreSQL text).
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def _text(max_length: int) -> object:
    return StringConstraints(max_length=max_length, pattern=PRINTABLE)


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def rfc3339_utc(value: object) -> object:
    """An RFC 3339 string (or an aware datetime) -> an aware datetime in UTC; anything else is left to pydantic.

    Checked here because pydantic alone would also take "1637907727" (unix time in a string) or a bare date."""
    if isinstance(value, str):
        if not _RFC3339.match(value):
            raise PydanticCustomError("rfc3339", "must be an RFC 3339 date-time with a time zone")
        try:
            # Python 3.11+ reads "Z" and any number of fraction digits (kept to microseconds); not a lowercase t/z.
            value = datetime.fromisoformat(value.upper())
        except ValueError:
            raise PydanticCustomError("rfc3339", "must be an RFC 3339 date-time with a time zone") from None
    if isinstance(value, datetime) and value.tzinfo is not None:
        try:
            return value.astimezone(UTC)
        except OverflowError:  # "0001-01-01T00:00:00+01:00": before year 1 in UTC, which Python cannot hold
            raise PydanticCustomError("rfc3339", "must be a date-time within years 1 to 9999 in UTC") from None
    return value


# The one definition of an order_uid (the model, the API and its OpenAPI document use these). The pattern is
# written in the syntax Python, pydantic's Rust regex and JSON Schema's ECMA 262 regex read the same way.
ORDER_UID_PATTERN = r"^[A-Za-z0-9_-]+$"
ORDER_UID_MAX_LENGTH = 64
OrderUid = Annotated[str, StringConstraints(min_length=1, max_length=ORDER_UID_MAX_LENGTH, pattern=ORDER_UID_PATTERN)]
_ORDER_UID = re.compile(ORDER_UID_PATTERN)


def is_order_uid(text: str) -> bool:
    """Whether ``text`` is a well-formed order_uid (for keys and path parameters, outside the model)."""
    # fullmatch: Python's "$" would also match before a trailing newline, JSON Schema's does not.
    return len(text) <= ORDER_UID_MAX_LENGTH and _ORDER_UID.fullmatch(text) is not None


Short = Annotated[str, _text(64)]
Tiny = Annotated[str, _text(32)]
Name = Annotated[str, _text(256)]
LongText = Annotated[str, _text(512)]
Email = Annotated[
    str, StringConstraints(max_length=254, pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
]
Phone = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Money = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
Id = Annotated[int, Field(ge=0, le=BIGINT_MAX)]
BigInt = Annotated[int, Field(ge=BIGINT_MIN, le=BIGINT_MAX)]
Sale = Annotated[int, Field(ge=0, le=100)]
Rfc3339 = Annotated[AwareDatetime, BeforeValidator(rfc3339_utc)]


class _Strict(BaseModel):
    # Strict: "123" is not a number and 1.0 is not an int; unknown fields are ignored; models are immutable.
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Delivery(_Strict):
    """Where the order goes. Personal data: never logged."""

    name: Name
    phone: Phone
    zip: Tiny
    city: Name
    address: LongText
    region: Name
    email: Email


class Payment(_Strict):
    """How the order was paid; money in minor units."""

    transaction: Short
    request_id: Short
    currency: Currency
    provider: Short
    amount: Money
    payment_dt: Id
    bank: Short
    delivery_cost: Money
    goods_total: Money
    custom_fee: Money


class Item(_Strict):
    """One line of the order."""

    chrt_id: Id
    track_number: Short
    price: Money
    rid: Short
    name: Name
    sale: Sale
    size: Tiny
    total_price: Money
    nm_id: Id
    brand: Name
    status: BigInt


class Order(_Strict):
    """An order exactly as it travels on the orders topic."""

    order_uid: OrderUid
    track_number: Short
    entry: Short
    delivery: Delivery
    payment: Payment
    items: Annotated[list[Item], Field(min_length=1)]
    locale: Tiny
    internal_signature: Name
    customer_id: Name
    delivery_service: Short
    shardkey: Tiny
    sm_id: Id
    date_created: Rfc3339
    oof_shard: Tiny

    def content_hash(self) -> bytes:
        """SHA-256 of the canonical JSON form: equal for the same order whatever its original formatting."""
        return fingerprint(self.model_dump_json().encode())


def fingerprint(data: bytes) -> bytes:
    """SHA-256 of ``data``, computed without releasing the GIL."""
    # hashlib drops the GIL for updates of 2 KiB or more; in the consume worker, taking it back costs far
    # more than the hashing itself (the store and relay threads grab it). Feed it smaller pieces.
    if len(data) <= _HASH_PIECE:
        return hashlib.sha256(data).digest()  # most orders: one piece
    digest = hashlib.sha256()
    for start in range(0, len(data), _HASH_PIECE):
        digest.update(data[start : start + _HASH_PIECE])
    return digest.digest()
