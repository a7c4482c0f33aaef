"""The ingest pipeline end to end: real Kafka, real PostgreSQL, ordersctl as real processes."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import psycopg
import pytest

from ordersctl.config import Settings
from ordersctl.dlq import format as fmt
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rules import decode_order
from ordersctl.errors import POISON_REASONS
from tests.e2e.ingest import assert_exactly_once, consume_until_idle, valid_messages
from tests.helpers import (
    create_topics,
    db_rows,
    headers,
    order_store,
    ordersctl,
    read_topic,
    send,
    stored_count,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _expected(messages: list[Generated]) -> tuple[dict[str, bytes], Counter[tuple[str, str]]]:
    valid = {m.order_uid: m.value for m in messages if m.kind == "valid"}
    poison = Counter((m.key.decode(), m.kind) for m in messages if m.kind in POISON_REASONS)
    return valid, poison


def _stored_orders(dsn: str, uids: list[str]) -> dict[str, dict[str, object]]:
    with psycopg.connect(dsn) as conn:
        return {o.order_uid: o.model_dump(mode="json") for o in order_store().reads.get_many(conn, uids)}


def _assert_dead_letter_headers(h: dict[str, str], settings: Settings) -> None:
    """Where a dead letter came from and why, in our headers and in Kafka Connect's."""
    assert h[fmt.ORIGINAL_TOPIC] == settings.kafka.orders_topic == h[fmt.CONNECT_TOPIC]
    assert h[fmt.ORIGINAL_OFFSET] == h[fmt.CONNECT_OFFSET] and int(h[fmt.ORIGINAL_OFFSET]) >= 0
    assert h[fmt.CONSUMER_GROUP] == settings.kafka.group_id
    assert h[fmt.CONNECT_EXCEPTION_CLASS].startswith("ordersctl.errors.")
    assert h[fmt.FAILED_AT].endswith("Z") and h[fmt.ATTEMPTS] == "1"
    if h[fmt.REASON] == "schema_violation":
        errors = json.loads(h[fmt.ERRORS])
        assert errors and {"path", "rule", "value_type"} <= set(errors[0])


def _assert_summary_adds_up(summary: dict[str, Any], stored: int, produced: int) -> None:
    """consume's summary: every message stored, a duplicate or dead-lettered, and an event per stored order."""
    dlq = summary["dlq"]
    assert isinstance(dlq, dict)
    assert summary["stored"] == stored
    assert summary["counts"] == "exact", "no worker died: the counts are every worker's last report"
    assert summary["stored"] + summary["duplicates"] + sum(dlq.values()) == produced
    assert summary["events"] == stored


def test_seeded_mix_lands_exactly_where_it_belongs(settings: Settings) -> None:
    create_topics(settings)
    messages = list(OrderGenerator(seed=11).messages(600, invalid_ratio=0.1, duplicate_ratio=0.05))
    valid, poison = _expected(messages)
    assert len(poison) >= 5 and {k for _, k in poison} == {"decode_error", "invalid_json", "schema_violation",
                                                             "rule_violation", "conflict"}  # fmt: skip
    send(settings, messages)

    summary = consume_until_idle(settings, "--workers", "2")

    # The database holds exactly the valid set, field by field.
    dsn = settings.postgres.dsn
    assert stored_count(dsn) == len(valid)
    stored = _stored_orders(dsn, list(valid))
    assert stored == {uid: decode_order(raw).model_dump(mode="json") for uid, raw in valid.items()}
    # The DLQ holds exactly the invalid ones, with their original bytes and the right reason codes.
    dead = read_topic(settings, settings.kafka.dlq_topic, expect=sum(poison.values()))
    assert Counter(((m.key() or b"").decode(), headers(m)[fmt.REASON]) for m in dead) == poison
    originals = {(m.key, m.value) for m in messages if m.kind in POISON_REASONS}
    assert {(m.key(), m.value()) for m in dead} == originals
    for m in dead:
        _assert_dead_letter_headers(headers(m), settings)
    # An event for every stored order.
    events = read_topic(settings, settings.kafka.events_topic, expect=len(valid))
    assert {(m.key() or b"").decode() for m in events} == set(valid)
    assert len({headers(m)["event-id"] for m in events}) == len(valid)
    _assert_summary_adds_up(summary, len(valid), len(messages))


def _with_copies(originals: list[Generated]) -> tuple[list[Generated], list[tuple[int, Generated]]]:
    """Each order followed a few messages later by a copy: the same bytes, the same content formatted
    differently (duplicates), or other content (a conflict). The messages, and each copy with its position."""
    copies: list[tuple[int, Generated]] = []  # (position to insert at, copy)
    for i, m in enumerate(originals):
        doc = json.loads(m.value)
        if i % 3 == 0:
            value, kind = m.value, "duplicate"
        elif i % 3 == 1:
            value, kind = json.dumps(dict(reversed(doc.items())), indent=1).encode(), "duplicate"
        else:
            value, kind = json.dumps({**doc, "entry": "CHANGED"}).encode(), "conflict"
        copies.append((i + 2 + i % 5, Generated(m.key, value, kind, m.order_uid)))
    by_position: dict[int, list[Generated]] = {}
    for at, copy in copies:
        by_position.setdefault(at, []).append(copy)
    messages: list[Generated] = []
    for i, m in enumerate(originals):
        messages += [*by_position.pop(i, []), m]
    messages += [c for at in sorted(by_position) for c in by_position[at]]
    assert len(messages) == 2 * len(originals)
    return messages, copies


def test_copies_in_batches_stored_at_once_are_duplicates_or_conflicts(settings: Settings) -> None:
    """Tiny batches, three stored at once by one worker: an order and its copy (same bytes, the same content
    formatted differently, or other content) often sit in two batches in flight. Nothing valid is lost or
    dead-lettered, a copy is a duplicate, other content is a conflict, and the first version is what stays."""
    create_topics(settings)
    originals = valid_messages(240, seed=41)
    messages, copies = _with_copies(originals)
    send(settings, messages)

    result = ordersctl(settings, "consume", "--workers", "1", "--batch-size", "3", "--stop-when-idle", "3", "--json",
                       ORDERS_PIPELINE__BATCHES_IN_FLIGHT="3")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)

    conflicts = sum(1 for _, c in copies if c.kind == "conflict")
    assert summary["stored"] == len(originals)
    assert summary["duplicates"] == len(copies) - conflicts
    assert summary["dlq"] == {"conflict": conflicts}
    dsn = settings.postgres.dsn
    uids = [m.order_uid for m in originals]
    assert _stored_orders(dsn, uids) == {m.order_uid: decode_order(m.value).model_dump(mode="json") for m in originals}
    dead = read_topic(settings, settings.kafka.dlq_topic, expect=conflicts)
    assert {(m.key(), m.value()) for m in dead} == {(c.key, c.value) for _, c in copies if c.kind == "conflict"}
    assert_exactly_once(settings, originals)


def test_canonical_sample_is_stored_and_reads_back_identical(settings: Settings, canonical_bytes: bytes) -> None:
    create_topics(settings)
    send(settings, [Generated(b"b563feb7b2b84b6test", canonical_bytes, "valid", "b563feb7b2b84b6test")])
    consume_until_idle(settings)
    dsn = settings.postgres.dsn
    for table in ("orders", "deliveries", "payments", "items"):
        assert db_rows(dsn, f"SELECT count(*) FROM {table} WHERE order_uid = 'b563feb7b2b84b6test'") == [(1,)]
    assert _stored_orders(dsn, ["b563feb7b2b84b6test"])["b563feb7b2b84b6test"] == json.loads(canonical_bytes)
