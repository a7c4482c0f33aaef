"""A dead letter as the on-call engineer sees it: reason, origin, attempts and replays, read from its headers."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from ordersctl.pipeline.dead_letters import REPLAY_COUNT, header_dict, key_uid


@dataclass(frozen=True)
class DeadLetterRecord:
    """One record of the DLQ."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    raw_headers: list[tuple[str, bytes]]

    @classmethod
    def of(cls, msg: Message) -> DeadLetterRecord:
        raw: Any = msg.headers() or []
        pairs = [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in raw]
        return cls(msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value(), header_dict(pairs), pairs)

    @property
    def reason(self) -> str:
        return self.headers.get("dlq.reason", "unknown")

    @property
    def replay_count(self) -> int:
        return _int(self.headers.get(REPLAY_COUNT)) or 0

    @property
    def failed_at(self) -> str:
        return self.headers.get("dlq.failed_at", "")

    @property
    def original_topic(self) -> str | None:
        return self.headers.get("dlq.original.topic")

    @property
    def order_uid(self) -> str | None:
        if self.value:
            try:
                doc = json.loads(self.value)
                if isinstance(doc, dict) and isinstance(doc.get("order_uid"), str):
                    return key_uid(doc["order_uid"].encode())
            except ValueError:
                pass
        return key_uid(self.key)

    def original(self) -> str:
        h = self.headers
        topic, part, offset = (h.get(f"dlq.original.{k}", "?") for k in ("topic", "partition", "offset"))
        return f"{topic}[{part}]@{offset}"

    def as_json(self, *, payload: bool = False) -> dict[str, Any]:
        """Ids, offsets, times and reasons; the key and original message (personal data) only with ``payload``."""
        doc = {
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
            "reason": self.reason,
            "error": self.headers.get("dlq.error", ""),
            "errors": _errors(self.headers.get("dlq.errors", "[]")),
            "original": {
                "topic": self.original_topic,
                "partition": _int(self.headers.get("dlq.original.partition")),
                "offset": _int(self.headers.get("dlq.original.offset")),
                "timestamp": _int(self.headers.get("dlq.original.timestamp")),
            },
            "order_uid": self.order_uid,
            "failed_at": self.failed_at,
            "attempts": _int(self.headers.get("dlq.attempts")),
            "replay_count": self.replay_count,
            "consumer_group": self.headers.get("dlq.consumer.group"),
            "key": _text(self.key),
            "headers": self.headers,
        }
        if payload:
            doc["payload"] = _text(self.value)
        return doc


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _errors(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _text(raw: bytes | None) -> dict[str, str] | None:
    """Payload as text, or base64 when it is not UTF-8."""
    if raw is None:
        return None
    try:
        return {"encoding": "utf-8", "data": raw.decode("utf-8")}
    except UnicodeDecodeError:
        return {"encoding": "base64", "data": base64.b64encode(raw).decode()}
