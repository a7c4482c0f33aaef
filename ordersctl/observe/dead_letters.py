"""The DLQ for status, trace and the pipeline page: counts by reason in a window, the latest dead letters,
one order's dead letters. Read from the ``dlq.*`` headers; never the payload."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ordersctl.dlq.reader import DlqReader, Selection
from ordersctl.dlq.records import DeadLetterRecord
from ordersctl.domain.times import utc_z


@dataclass(frozen=True)
class DeadLetterSummary:
    """One dead letter without its payload: where it is, why and when it failed, whose order it was."""

    partition: int
    offset: int
    reason: str
    failed_at: datetime | None
    order_uid: str | None
    replay_count: int
    unreadable: tuple[str, ...] = ()

    @classmethod
    def of(cls, record: DeadLetterRecord) -> DeadLetterSummary:
        return cls(record.partition, record.offset, record.reason, failed_at(record), record.order_uid,
                   record.replay_count, tuple(record.unreadable))  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "reason": self.reason,
            "failed_at": utc_z(self.failed_at, "milliseconds") if self.failed_at else None,
            "order_uid": self.order_uid,
            "replay_count": self.replay_count,
            "unreadable": list(self.unreadable),
        }


@dataclass(frozen=True)
class DlqWindow:
    """Dead letters held by the topic, and those that failed since ``since``, by reason."""

    topic: str
    since: datetime
    retained: int
    by_reason: dict[str, int]

    @property
    def in_window(self) -> int:
        return sum(self.by_reason.values())

    def as_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "since": utc_z(self.since, "milliseconds"), "retained": self.retained,
                "in_window": self.in_window, "by_reason": dict(self.by_reason)}  # fmt: skip


def failed_at(record: DeadLetterRecord) -> datetime | None:
    """The ``dlq.failed_at`` header as a time; None when it is missing or not a time."""
    try:
        when = datetime.fromisoformat(record.failed_at) if record.failed_at else None
    except ValueError:
        return None
    # ordersctl writes UTC with "Z"; a time without a zone from elsewhere is taken as UTC, never as local time.
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _in_window(record: DeadLetterRecord, since: datetime) -> bool:
    # The read starts at the first record written since then (Kafka's timestamps); the header is exact. A
    # record without a readable header is kept: its Kafka timestamp already put it in the window.
    when = failed_at(record)
    return when is None or when >= since


def dlq_window(reader: DlqReader, since: datetime) -> DlqWindow:
    """Counts by reason of the dead letters that failed since ``since``; raises DlqMissing without a topic."""
    retained = sum(end - start for start, end in reader.bounds(Selection()).values())
    reasons = Counter(r.reason for r in reader.read(reader.bounds(Selection(since=since))) if _in_window(r, since))
    return DlqWindow(reader.topic, since, retained, dict(reasons.most_common()))


def latest_dead_letters(reader: DlqReader, limit: int = 20) -> list[DeadLetterSummary]:
    """The ``limit`` most recent dead letters, newest first: at most ``limit`` read from each partition."""
    bounds = {p: (max(start, end - limit), end) for p, (start, end) in reader.bounds(Selection()).items()}
    found = [DeadLetterSummary.of(r) for r in reader.read(bounds)]
    # Partitions are not ordered among themselves; the failure time is (offset breaks ties, or stands in).
    found.sort(key=lambda d: (d.failed_at.timestamp() if d.failed_at else 0.0, d.offset), reverse=True)
    return found[:limit]


def dead_letters_of(reader: DlqReader, order_uid: str, since: datetime) -> list[DeadLetterSummary]:
    """Every dead letter of one order written since ``since``, oldest first."""
    found = [DeadLetterSummary.of(r) for r in reader.read(reader.bounds(Selection(since=since)))
             if r.order_uid == order_uid]  # fmt: skip
    found.sort(key=lambda d: (d.failed_at.timestamp() if d.failed_at else 0.0, d.partition, d.offset))
    return found
