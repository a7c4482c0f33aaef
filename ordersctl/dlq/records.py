"""A dead letter as the on-call engineer sees it: reason, origin, attempts and replays, read from its headers.

The one place where the tools (inspect, replay, trace, status, the API) derive fields from a record. A record
is whatever the DLQ holds, hostile input included: every field is read with limits and never raises; a field
that cannot be read is listed in ``unreadable`` and shown as "unreadable".
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Final

from confluent_kafka import Message

from ordersctl.adapters.kafka_headers import Pairs, header_pairs
from ordersctl.dlq import format as fmt
from ordersctl.domain.peek import UNREADABLE as _UNREADABLE
from ordersctl.domain.peek import Unreadable, bounded_json, key_uid, order_uid_in

UNREADABLE: Final = "unreadable"
# A header value shown to people or in JSON is cut here; replay sends the original bytes.
_TEXT_LIMIT: Final = fmt.ERROR_TEXT_LIMIT
_ERRORS_LIMIT: Final = 64 * 1024  # ordersctl writes at most 50 field errors: a few KiB
_DIGITS_LIMIT: Final = 20  # an offset, a partition, a count or a time in milliseconds


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of the DLQ."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    raw_headers: Pairs
    # Header name -> text, the last value of a repeated name; None where the value is not UTF-8.
    texts: dict[str, str | None] = field(repr=False)
    headers_readable: bool = True

    @classmethod
    def of(cls, msg: Message) -> DeadLetterRecord:
        pairs = header_pairs(msg)
        texts: dict[str, str | None] = {}
        for name, value in pairs or []:
            try:
                texts[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                texts[name] = None
        return cls(
            msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value(), pairs or [], texts, pairs is not None
        )

    def header(self, name: str, default: str = "") -> str:
        """A header as text for people: cut to a length, UNREADABLE when it is not UTF-8."""
        if name not in self.texts:
            return default
        text = self.texts[name]
        return UNREADABLE if text is None else text[:_TEXT_LIMIT]

    def number(self, name: str) -> int | None:
        text = self.texts.get(name)
        if text is None or not 0 < len(text.strip()) <= _DIGITS_LIMIT:
            return None
        try:
            return int(text)
        except ValueError:
            return None

    @property
    def headers(self) -> dict[str, str]:
        return {name: self.header(name) for name in self.texts}

    @property
    def reason(self) -> str:
        return self.header(fmt.REASON, "unknown")

    @property
    def error(self) -> str:
        return self.header(fmt.ERROR)

    @property
    def replay_count(self) -> int:
        return max(self.number(fmt.REPLAY_COUNT) or 0, 0)

    @property
    def failed_at(self) -> str:
        stamp = self.header(fmt.FAILED_AT)
        return "" if stamp == UNREADABLE else stamp

    @property
    def original_topic(self) -> str | None:
        topic = self.texts.get(fmt.ORIGINAL_TOPIC)
        return topic or None

    @cached_property
    def _uid_in_value(self) -> str | Unreadable | None:
        return order_uid_in(self.value)

    @property
    def order_uid(self) -> str | None:
        found = self._uid_in_value
        return found if isinstance(found, str) else key_uid(self.key)

    @property
    def unreadable(self) -> list[str]:
        """The fields that could not be read from this record."""
        missing = []
        if not self.headers_readable:
            missing.append("headers")
        if self.texts.get(fmt.REASON, "") is None:
            missing.append("reason")
        if self.texts.get(fmt.ERROR, "") is None:
            missing.append("error")
        if self._uid_in_value is _UNREADABLE and key_uid(self.key) is None:
            missing.append("order_uid")
        return missing

    def original(self) -> str:
        topic = self.header(fmt.ORIGINAL_TOPIC, "?")
        partition, offset = (self.number(n) for n in (fmt.ORIGINAL_PARTITION, fmt.ORIGINAL_OFFSET))
        return f"{topic}[{'?' if partition is None else partition}]@{'?' if offset is None else offset}"

    def as_json(self, *, payload: bool = False) -> dict[str, Any]:
        """Ids, offsets, times and reasons; the key and original message (personal data) only with ``payload``."""
        doc = {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "reason": self.reason,
            "error": self.error,
            "errors": _errors(self.texts.get(fmt.ERRORS)),
            "original": {
                "topic": self.original_topic,
                "partition": self.number(fmt.ORIGINAL_PARTITION),
                "offset": self.number(fmt.ORIGINAL_OFFSET),
                "timestamp": self.number(fmt.ORIGINAL_TIMESTAMP),
            },
            "order_uid": self.order_uid,
            "failed_at": self.failed_at,
            "attempts": self.number(fmt.ATTEMPTS),
            "replay_count": self.replay_count,
            "consumer_group": self.texts.get(fmt.CONSUMER_GROUP),
            "key": _text(self.key),
            "headers": self.headers,
            "unreadable": self.unreadable,
        }
        if payload:
            doc["payload"] = _text(self.value)
        return doc


def _errors(raw: str | None) -> Any:
    """The field errors as JSON; their text, cut, when they are not readable JSON."""
    if raw is None:
        return UNREADABLE
    if len(raw) > _ERRORS_LIMIT:
        return raw[:_TEXT_LIMIT]
    parsed = bounded_json(raw)
    return raw[:_TEXT_LIMIT] if parsed is _UNREADABLE or not _finite(parsed) else parsed


def _finite(doc: object) -> bool:
    """No NaN or infinity anywhere in ``doc``. The parser reads ``NaN``, ``Infinity`` and ``1e999999`` as floats
    that JSON cannot carry: ``--json`` and the API would write them as ``NaN``/``Infinity``, which no strict
    JSON parser reads. Walked with a stack: ``doc`` is bounded in size, but no recursion on input."""
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _text(raw: bytes | None) -> dict[str, str] | None:
    """Bytes as text, or base64 when they are not UTF-8."""
    if raw is None:
        return None
    try:
        return {"encoding": "utf-8", "data": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(raw).decode()}
