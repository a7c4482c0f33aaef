"""Trace verdicts and the DLQ summaries, from plain data and a DlqReader stand-in (no broker)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Message
from rich.console import Console

from ordersctl.adapters.pipeline_queries import PendingEvent
from ordersctl.cli.observe_views import trace_view
from ordersctl.dlq import format as fmt
from ordersctl.dlq.reader import DlqReader, Selection
from ordersctl.dlq.records import DeadLetterRecord
from ordersctl.observe.dead_letters import DeadLetterSummary, dead_letters_of, dlq_window, latest_dead_letters
from ordersctl.observe.trace import event_header
from ordersctl.observe.trace_model import (
    CacheFacts,
    EventTrail,
    OrderRecord,
    OrderTrace,
    PublishedEvent,
    StoredFacts,
    TopicTrail,
)
from tests.fakes import UndecodableHeaders

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECRET = b'{"order_uid": "%s", "delivery": {"name": "Jane Roe", "phone": "+15550100"}}'


def _letter(
    partition: int, offset: int, uid: str, reason: str, minutes_ago: float, replays: int = 0
) -> DeadLetterRecord:
    failed = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    headers: list[tuple[str, str | bytes | None]] = [
        (fmt.REASON, reason.encode()),
        (fmt.FAILED_AT, failed.encode()),
    ]
    if replays:
        headers.append((fmt.REPLAY_COUNT, str(replays).encode()))
    msg = Message(topic="orders.dlq", partition=partition, offset=offset, key=uid.encode(),
                  value=SECRET % uid.encode(), headers=headers)  # fmt: skip
    return DeadLetterRecord.of(msg)


class ListReader(DlqReader):
    """A DlqReader over records in memory: bounds and read honour offsets and ``since`` like the real one."""

    def __init__(self, records: list[DeadLetterRecord]) -> None:
        self.records = records
        self.topic = "orders.dlq"
        self.timeout = 1.0

    def partitions(self) -> list[int]:
        return sorted({r.partition for r in self.records})

    def bounds(self, sel: Selection, start_at: dict[int, int] | None = None) -> dict[int, tuple[int, int]]:
        out = {}
        for p in self.partitions():
            mine = [r for r in self.records if r.partition == p]
            since = [r.offset for r in mine if sel.since is None or datetime.fromisoformat(r.failed_at) >= sel.since]
            out[p] = (min(since, default=mine[-1].offset + 1), mine[-1].offset + 1)
        return out

    def read(self, bounds: dict[int, tuple[int, int]]) -> Iterator[DeadLetterRecord]:
        for p, (start, end) in sorted(bounds.items()):
            yield from (r for r in self.records if r.partition == p and start <= r.offset < end)


READER = ListReader([
    _letter(0, 0, "a1", "conflict", 300), _letter(0, 1, "a2", "schema_violation", 30),
    _letter(0, 2, "a1", "conflict", 5, replays=1), _letter(1, 0, "b1", "too_many_items", 90),
    _letter(1, 1, "b2", "conflict", 1),
])  # fmt: skip


def test_window_counts_by_reason_and_keeps_the_total_held() -> None:
    window = dlq_window(READER, NOW - timedelta(hours=1))
    assert window.retained == 5
    assert window.by_reason == {"conflict": 2, "schema_violation": 1}
    assert window.in_window == 3


def test_latest_dead_letters_are_newest_first_and_carry_no_payload() -> None:
    latest = latest_dead_letters(READER, limit=3)
    assert [(d.partition, d.offset) for d in latest] == [(1, 1), (0, 2), (0, 1)]
    doc = latest[0].as_json()
    assert doc == {"partition": 1, "offset": 1, "reason": "conflict", "failed_at": "2026-03-01T11:59:00.000Z",
                   "order_uid": "b2", "replay_count": 0, "unreadable": []}  # fmt: skip


def test_dead_letters_of_one_order_oldest_first() -> None:
    found = dead_letters_of(READER, "a1", NOW - timedelta(days=1))
    assert [(d.offset, d.replay_count) for d in found] == [(0, 0), (2, 1)]
    assert dead_letters_of(READER, "a1", NOW - timedelta(minutes=10)) == [found[1]]


def _trace(stored: bool | None, letters: int | None, records: tuple[bool, ...] | None = ()) -> OrderTrace:
    trail = None
    if records is not None:
        trail = TopicTrail("orders", 2, "consistent_random", (10, 20), 15,
                           tuple(OrderRecord(11 + i, NOW, c) for i, c in enumerate(records)))  # fmt: skip
    dead = None if letters is None else tuple(DeadLetterSummary(2, i, "conflict", NOW, "u1", 0) for i in range(letters))
    pg = None if stored is None else (StoredFacts(True, NOW, "ab" * 32, 3) if stored else StoredFacts(False))
    event = EventTrail("orders.events", (), (PublishedEvent(1, 7, NOW, "42"),)) if stored else None
    return OrderTrace("u1", NOW, trail, dead, pg, event, CacheFacts(False, "order:u1", None))


@pytest.mark.parametrize(
    ("stored", "letters", "records", "verdict", "code"),
    [
        (True, 0, (True,), "stored", 0),
        (True, 1, (True, True), "stored", 0),  # a conflicting duplicate: stored and dead-lettered
        (False, 1, (True,), "dead_lettered", 5),
        (False, 0, (True, False), "waiting", 1),
        (False, 0, (True,), "not_stored", 1),
        (False, 0, (), "not_found", 1),
        (None, 1, (True,), "unknown", 1),  # PostgreSQL down: whether it is stored cannot be told
        (False, None, (), "unknown", 1),  # Kafka down: not stored, but the DLQ was not read
    ],
)
def test_verdict_and_exit_code(
    stored: bool | None, letters: int | None, records: tuple[bool, ...], verdict: str, code: int
) -> None:
    trace = _trace(stored, letters, records)
    assert (trace.verdict, trace.exit_code()) == (verdict, code)


def test_event_state() -> None:
    pending = (PendingEvent(9, NOW),)
    assert EventTrail("e", pending, ()).state == "pending"
    assert EventTrail("e", (), (PublishedEvent(0, 1, NOW, "9"),)).state == "published"
    assert EventTrail("e", (), ()).state == "not found"
    assert EventTrail("e", (), None).state == "unknown"


def test_json_and_table_hold_ids_offsets_times_and_reasons_only() -> None:
    trace = _trace(True, 1, (True, False))
    doc = trace.as_json()
    assert doc["verdict"] == "stored" and doc["exit_code"] == 0
    assert doc["orders"]["records"][1] == {"offset": 12, "timestamp": "2026-03-01T12:00:00.000Z", "committed": False}
    assert doc["event"]["published"] == [{"partition": 1, "offset": 7, "timestamp": "2026-03-01T12:00:00.000Z",
                                          "event_id": "42"}]  # fmt: skip
    assert doc["redis"]["memory"].startswith("per serve process")
    console = Console(record=True, width=200)
    console.print(trace_view(trace))
    text = console.export_text()
    assert "orders[2] (consistent_random): offsets 10..20 scanned, group committed 15" in text
    assert "event: published (orders.events[1]@7 event-id 42)" in text
    assert "trace u1: stored (exit 0)" in text
    for shown in (json.dumps(doc), text):
        assert "Jane" not in shown and "+1555" not in shown


def test_an_event_whose_headers_cannot_be_read_has_no_event_id_and_raises_nothing() -> None:
    fine = Message(topic="o.events", partition=0, offset=3, key=b"u", value=b"{}", headers=[("event-id", b"e-1")])
    assert event_header(fine, "event-id") == "e-1"
    hostile = UndecodableHeaders(topic="o.events", partition=0, offset=4, key=b"u", value=b"{}")
    assert event_header(hostile, "event-id") is None
