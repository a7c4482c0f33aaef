"""Dead letters: the original message plus headers that say why, where it came from, and when.

Besides our ``dlq.*`` headers, the Kafka Connect names (``__connect.errors.*``) are written too, so tools
that understand Connect's dead-letter queues read ours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Message

from ordersctl.adapters.kafka import ConfirmedSender, Outgoing, SendingProducer
from ordersctl.domain.order import is_order_uid
from ordersctl.domain.rules import errors_json
from ordersctl.domain.times import utc_z
from ordersctl.errors import ClientFailed, PoisonError, TransientError

REPLAY_COUNT = "dlq.replay.count"
OWN_HEADERS = re.compile(r"^(dlq\.|__connect\.errors\.)")

Headers = list[tuple[str, bytes]]


def key_uid(key: bytes | None) -> str | None:
    """The order_uid a message key names, when it looks like one (used in logs; never the payload)."""
    if not key:
        return None
    text = key.decode("utf-8", "replace")
    return text if is_order_uid(text) else None


def _as_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def header_dict(headers: Sequence[tuple[str, str | bytes | None]] | None) -> dict[str, str]:
    return {k: _as_bytes(v).decode("utf-8", "replace") for k, v in headers or []}


@dataclass(frozen=True)
class DeadLetter:
    """A poison message and the reason it is one."""

    message: Message
    error: PoisonError
    attempts: int = 1


def dead_letter_headers(letter: DeadLetter, group_id: str, now: datetime | None = None) -> Headers:
    msg = letter.message
    original: Any = msg.headers() or []
    kept: Headers = [(k, _as_bytes(v)) for k, v in original if not OWN_HEADERS.match(k) or k == REPLAY_COUNT]
    _ts_type, ts = msg.timestamp()
    failed_at = utc_z(now or datetime.now(UTC))
    detail = str(letter.error)[:1000]
    ours = {
        "dlq.reason": letter.error.reason,
        "dlq.error": detail,
        "dlq.errors": json.dumps(errors_json(letter.error.errors)),
        "dlq.original.topic": msg.topic() or "",
        "dlq.original.partition": str(msg.partition()),
        "dlq.original.offset": str(msg.offset()),
        "dlq.original.timestamp": str(ts),
        "dlq.consumer.group": group_id,
        "dlq.attempts": str(letter.attempts),
        "dlq.failed_at": failed_at,
        "__connect.errors.topic": msg.topic() or "",
        "__connect.errors.partition": str(msg.partition()),
        "__connect.errors.offset": str(msg.offset()),
        "__connect.errors.exception.class.name": f"ordersctl.errors.{type(letter.error).__name__}",
        "__connect.errors.exception.message": detail,
    }
    return [*kept, *((k, v.encode()) for k, v in ours.items())]


def _partition(msg: Message) -> int:
    partition = msg.partition()
    return -1 if partition is None else partition


class DeadLetterSender:
    """Publishes dead letters and confirms every delivery before the caller commits offsets."""

    def __init__(self, producer: SendingProducer, topic: str, group_id: str, timeout: float = 15.0) -> None:
        self._producer = producer
        self._topic = topic
        self._group_id = group_id
        self._timeout = timeout

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Send all; raise TransientError (nothing to commit) unless every one is confirmed, ClientFailed when
        the producer is unusable."""
        if not letters:
            return
        report = ConfirmedSender(self._producer, timeout=self._timeout).send_all(
            Outgoing(
                self._topic,
                letter.message.value(),
                letter.message.key(),
                dead_letter_headers(letter, self._group_id),
                # Same partition as the original, so a partition's dead letters stay in order.
                partition=_partition(letter.message),
            )
            for letter in letters
        )
        if report.fatal is not None:
            raise ClientFailed(f"dead-letter producer failed: {report.fatal.str()}")
        if not report.complete:
            first = report.failed[0][1] if report.failed else "delivery not confirmed in time"
            raise TransientError(f"dead-letter send to {self._topic} failed: {first}")
