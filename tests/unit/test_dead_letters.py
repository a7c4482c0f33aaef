"""Dead-letter headers and backoff, with a stand-in for confluent_kafka.Message (same methods)."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from datetime import UTC, datetime

from confluent_kafka import Message

from ordersctl.dlq import format as fmt
from ordersctl.dlq.letters import DeadLetter, dead_letter_headers
from ordersctl.domain.peek import key_uid
from ordersctl.errors import FieldError, PoisonError, SchemaViolation
from ordersctl.pipeline.backoff import Backoff


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
    assert h[fmt.REASON] == b"schema_violation"
    assert json.loads(h[fmt.ERRORS]) == [
        {"path": "payment.amount", "rule": "int_type", "value_type": "string", "message": "m"}
    ]
    assert (h[fmt.ORIGINAL_TOPIC], h[fmt.ORIGINAL_PARTITION], h[fmt.ORIGINAL_OFFSET]) == (b"orders", b"2", b"41")
    assert h[fmt.ORIGINAL_TIMESTAMP] == b"1700000000000"
    assert h[fmt.CONSUMER_GROUP] == b"grp"
    assert h[fmt.FAILED_AT] == b"2026-01-02T03:04:05Z"
    assert h[fmt.CONNECT_TOPIC] == b"orders"
    assert h[fmt.CONNECT_PARTITION] == b"2"
    assert h[fmt.CONNECT_OFFSET] == b"41"
    assert h[fmt.CONNECT_EXCEPTION_CLASS] == b"ordersctl.errors.SchemaViolation"
    assert h[fmt.CONNECT_EXCEPTION_MESSAGE] == b"payment.amount: int_type"


def test_a_dead_letter_of_a_replayed_message_keeps_the_replay_count_only() -> None:
    old = [(fmt.REASON, b"conflict"), (fmt.CONNECT_OFFSET, b"7"), (fmt.REPLAY_COUNT, b"2"), ("x", b"1")]
    h = dead_letter_headers(DeadLetter(record(old), SchemaViolation("m")), "g")
    names = [k for k, _ in h]
    assert names.count(fmt.REASON) == 1 and names.count(fmt.CONNECT_OFFSET) == 1
    assert dict(h)[fmt.REPLAY_COUNT] == b"2" and dict(h)["x"] == b"1"
    assert dict(h)[fmt.REASON] == b"schema_violation"


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
