"""Dead-letter headers and backoff, with a stand-in for confluent_kafka.Message (same methods)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime

from confluent_kafka import Message

from ordersctl.errors import FieldError, PoisonError, SchemaViolation
from ordersctl.pipeline.backoff import Backoff
from ordersctl.pipeline.dead_letters import REPLAY_COUNT, DeadLetter, dead_letter_headers, key_uid


def record(headers: Sequence[tuple[str, bytes]] = ()) -> Message:
    """A consumed record as confluent_kafka builds it."""
    carried: list[tuple[str, str | bytes | None]] | None = [*headers] if headers else None
    return Message(topic="orders", partition=2, offset=41, key=b"uid-1", value=b"{}", headers=carried,
                   timestamp=(1, 1700000000000))  # fmt: skip


def _headers(msg: Message, error: PoisonError) -> dict[str, bytes]:
    letter = DeadLetter(msg, error)
    return dict(dead_letter_headers(letter, "grp", now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))


def test_headers_say_why_where_and_when() -> None:
    error = SchemaViolation("payment.amount: int_type", (FieldError("payment.amount", "int_type", "string", "m"),))
    h = _headers(record([("trace", b"abc")]), error)
    assert h["trace"] == b"abc"
    assert h["dlq.reason"] == b"schema_violation"
    assert json.loads(h["dlq.errors"]) == [
        {"path": "payment.amount", "rule": "int_type", "value_type": "string", "message": "m"}
    ]
    assert (h["dlq.original.topic"], h["dlq.original.partition"], h["dlq.original.offset"]) == (b"orders", b"2", b"41")
    assert h["dlq.original.timestamp"] == b"1700000000000"
    assert h["dlq.consumer.group"] == b"grp"
    assert h["dlq.failed_at"] == b"2026-01-02T03:04:05Z"
    assert h["__connect.errors.topic"] == b"orders"
    assert h["__connect.errors.partition"] == b"2"
    assert h["__connect.errors.offset"] == b"41"
    assert h["__connect.errors.exception.class.name"] == b"ordersctl.errors.SchemaViolation"
    assert h["__connect.errors.exception.message"] == b"payment.amount: int_type"


def test_a_dead_letter_of_a_replayed_message_keeps_the_replay_count_only() -> None:
    old = [("dlq.reason", b"conflict"), ("__connect.errors.offset", b"7"), (REPLAY_COUNT, b"2"), ("x", b"1")]
    h = dead_letter_headers(DeadLetter(record(old), SchemaViolation("m")), "g")
    names = [k for k, _ in h]
    assert names.count("dlq.reason") == 1 and names.count("__connect.errors.offset") == 1
    assert dict(h)[REPLAY_COUNT] == b"2" and dict(h)["x"] == b"1"
    assert dict(h)["dlq.reason"] == b"schema_violation"


def test_key_uid_only_for_plausible_ids() -> None:
    assert key_uid(b"abc-123_X") == "abc-123_X"
    assert key_uid(b"has space") is None
    assert key_uid(None) is None
    assert key_uid(b"\xff") is None


def test_backoff_grows_is_capped_and_jittered() -> None:
    b = Backoff(0.1, 2.0, random.Random(1))
    delays = [b.next() for _ in range(50)]
    assert all(0.05 <= d <= 2.0 for d in delays)
    assert max(delays[10:]) > 1.0  # it grew towards the cap
    assert len(set(delays)) > 40  # jittered, not lock-step
    b.reset()
    assert b.attempt == 0 and b.next() <= 0.1
