"""What ``trace`` found about one order, and the verdict: stored, only dead-lettered, or nowhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ordersctl.adapters.pipeline_queries import PendingEvent
from ordersctl.domain.times import utc_z
from ordersctl.observe.dead_letters import DeadLetterSummary

EXIT_STORED = 0
EXIT_NOT_STORED = 1  # found nowhere, still waiting, or a source needed for the answer could not be read
EXIT_DEAD_LETTERED = 5  # not stored, but in the DLQ
MEMORY_CACHE_NOTE = "per serve process: not visible from here"


def _time(moment: datetime | None) -> str | None:
    return utc_z(moment, "milliseconds") if moment is not None else None


@dataclass(frozen=True)
class OrderRecord:
    """A record of the order on the orders topic; committed: the group has got past it."""

    offset: int
    timestamp: datetime | None
    committed: bool

    def as_json(self) -> dict[str, Any]:
        return {"offset": self.offset, "timestamp": _time(self.timestamp), "committed": self.committed}


@dataclass(frozen=True)
class TopicTrail:
    """The partition the order_uid maps to, the offsets scanned and the order's records there."""

    topic: str
    partition: int
    partitioner: str
    scanned: tuple[int, int]  # [from, to) offsets
    committed_offset: int | None  # the group's, on this partition
    records: tuple[OrderRecord, ...]

    def as_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "partitioner": self.partitioner,
                "scanned": {"from": self.scanned[0], "to": self.scanned[1]},
                "committed_offset": self.committed_offset,
                "records": [r.as_json() for r in self.records]}  # fmt: skip


@dataclass(frozen=True)
class StoredFacts:
    """PostgreSQL's row of the order, without its content: when, the fingerprint, how many items."""

    stored: bool
    stored_at: datetime | None = None
    fingerprint: str | None = None  # hex SHA-256 (orders.content_hash)
    items: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"stored": self.stored, "stored_at": _time(self.stored_at), "fingerprint": self.fingerprint,
                "items": self.items}  # fmt: skip


@dataclass(frozen=True)
class PublishedEvent:
    """An "order saved" event on the events topic."""

    partition: int
    offset: int
    timestamp: datetime | None
    event_id: str | None

    def as_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "offset": self.offset, "timestamp": _time(self.timestamp),
                "event_id": self.event_id}  # fmt: skip


@dataclass(frozen=True)
class EventTrail:
    """The order's event: still in the outbox, or published (at least once, so possibly more than once)."""

    topic: str
    pending: tuple[PendingEvent, ...]
    published: tuple[PublishedEvent, ...] | None  # None: the events topic could not be read

    @property
    def state(self) -> str:
        if self.pending:
            return "pending"
        if self.published:
            return "published"
        return "unknown" if self.published is None else "not found"

    def as_json(self) -> dict[str, Any]:
        pending = [{"event_id": e.event_id, "created_at": _time(e.created_at)} for e in self.pending]
        published = None if self.published is None else [e.as_json() for e in self.published]
        return {"state": self.state, "topic": self.topic, "pending": pending, "published": published}


@dataclass(frozen=True)
class CacheFacts:
    """Whether Redis holds the order; the memory cache lives in each serve process and cannot be seen."""

    cached: bool
    key: str
    ttl_seconds: int | None  # None: no expiry, or not cached

    def as_json(self) -> dict[str, Any]:
        return {"cached": self.cached, "key": self.key, "ttl_seconds": self.ttl_seconds, "memory": MEMORY_CACHE_NOTE}


@dataclass(frozen=True)
class OrderTrace:
    """Everything found about one order; a source that could not be read is None and named in ``unread``."""

    order_uid: str
    since: datetime
    orders: TopicTrail | None
    dead_letters: tuple[DeadLetterSummary, ...] | None
    postgres: StoredFacts | None
    event: EventTrail | None
    cache: CacheFacts | None
    unread: dict[str, str] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        """stored, dead_lettered, waiting (on the orders topic, not yet committed), not_stored (read and
        committed, but neither stored nor dead-lettered since ``since``), not_found, or unknown."""
        if self.postgres is None:
            return "unknown"
        if self.postgres.stored:
            return "stored"
        if self.dead_letters:
            return "dead_lettered"
        if self.dead_letters is None or self.orders is None:
            return "unknown"
        if any(not r.committed for r in self.orders.records):
            return "waiting"
        return "not_stored" if self.orders.records else "not_found"

    def exit_code(self) -> int:
        verdict = self.verdict
        if verdict == "stored":
            return EXIT_STORED
        return EXIT_DEAD_LETTERED if verdict == "dead_lettered" else EXIT_NOT_STORED

    def as_json(self) -> dict[str, Any]:
        return {
            "order_uid": self.order_uid,
            "since": _time(self.since),
            "verdict": self.verdict,
            "exit_code": self.exit_code(),
            "orders": self.orders.as_json() if self.orders else None,
            "dead_letters": None if self.dead_letters is None else [d.as_json() for d in self.dead_letters],
            "postgres": self.postgres.as_json() if self.postgres else None,
            "event": self.event.as_json() if self.event else None,
            "redis": self.cache.as_json() if self.cache else None,
            "unread": dict(self.unread),
        }
