"""Reading a field out of a message that may be hostile: bounded in size and depth, never recursive.

The consumer validates a message in full; the tools that look at messages afterwards (the DLQ tools, trace,
``produce --file``) only want to know whose order it is, and must never fail on what they are shown.
"""

from __future__ import annotations

from typing import Final

import pydantic_core

from ordersctl.domain.order import is_order_uid

# A document is looked into only up to this size. Kafka's default maximum message is 1 MiB; a tool that meets a
# bigger one shows it as unreadable rather than spend its time and memory on it.
MAX_DOCUMENT_BYTES: Final = 4 * 1024 * 1024


class Unreadable:
    """What a field is when it cannot be read: too big, too deep, not UTF-8, not JSON."""

    _instance: Unreadable | None = None

    def __new__(cls) -> Unreadable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNREADABLE"


UNREADABLE: Final = Unreadable()


def bounded_json(raw: bytes | str) -> object:
    """The JSON document in ``raw``, or UNREADABLE. pydantic-core's parser is iterative with a depth limit
    (no RecursionError), refuses numbers past its range and invalid UTF-8, and raises only ValueError."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        return UNREADABLE
    try:
        return pydantic_core.from_json(raw)
    except ValueError:
        return UNREADABLE


def key_uid(key: bytes | None) -> str | None:
    """The order_uid a message key names, when it looks like one (used in logs; never the payload)."""
    if not key or len(key) > 256:
        return None
    text = key.decode("utf-8", "replace")
    return text if is_order_uid(text) else None


def order_uid_in(value: bytes | None) -> str | Unreadable | None:
    """The well-formed ``order_uid`` of a JSON object; None when the document has none, UNREADABLE when the
    document cannot be read at all."""
    if not value:
        return None
    doc = bounded_json(value)
    if doc is UNREADABLE:
        return UNREADABLE
    uid: object = doc.get("order_uid") if isinstance(doc, dict) else None
    return uid if isinstance(uid, str) and is_order_uid(uid) else None
