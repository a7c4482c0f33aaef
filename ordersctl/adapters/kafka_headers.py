"""Kafka record headers as text: names and values of any bytes, duplicated or missing, read without failing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confluent_kafka import Message

Pairs = list[tuple[str, bytes]]


def as_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def header_pairs(msg: Message) -> Pairs | None:
    """The record's headers as (name, bytes); None when the client cannot decode them (a name that is not
    UTF-8 makes confluent-kafka raise)."""
    try:
        raw: Any = msg.headers() or []  # typed loosely by confluent_kafka: (name, bytes | str | None) pairs
    except (UnicodeDecodeError, ValueError, TypeError):
        return None
    return [(str(k), as_bytes(v)) for k, v in raw]


def header_dict(headers: Sequence[tuple[str, str | bytes | None]] | None) -> dict[str, str]:
    """Name -> text; a name given twice keeps its last value, bytes that are not UTF-8 are replaced."""
    return {k: as_bytes(v).decode("utf-8", "replace") for k, v in headers or []}
