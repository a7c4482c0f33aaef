"""Reading the DLQ with assign + seek: it never joins the group it names and never commits by itself."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, TopicPartition

from ordersctl.adapters.kafka_scan import scan_partition
from ordersctl.dlq.records import DeadLetterRecord
from ordersctl.errors import OrdersError, TransientError


class DlqMissing(OrdersError):
    """The dead-letter topic does not exist."""


@dataclass(frozen=True)
class Selection:
    """Which dead letters an operation is about."""

    reason: str | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    since: datetime | None = None

    def matches(self, record: DeadLetterRecord) -> bool:
        return self.reason is None or record.reason == self.reason


class DlqReader:
    """Reads a DLQ with assign + seek: it never joins the group it names and never commits by itself."""

    def __init__(self, consumer: Consumer, topic: str, timeout: float = 10.0) -> None:
        self._consumer = consumer
        self.topic = topic
        self.timeout = timeout

    def partitions(self) -> list[int]:
        try:
            meta = self._consumer.list_topics(self.topic, timeout=self.timeout)
        except KafkaException as exc:
            raise TransientError(f"Kafka metadata unavailable: {exc}") from None
        topic = meta.topics.get(self.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise DlqMissing(f"dead-letter topic {self.topic} does not exist")
        return sorted(topic.partitions)

    def bounds(self, sel: Selection, start_at: dict[int, int] | None = None) -> dict[int, tuple[int, int]]:
        """partition -> [start, end) to read."""
        parts = [sel.partition] if sel.partition is not None else self.partitions()
        since: dict[int, int] = {}
        if sel.since is not None:
            stamp = int(sel.since.timestamp() * 1000)
            found = self._consumer.offsets_for_times([TopicPartition(self.topic, p, stamp) for p in parts],
                                                     timeout=self.timeout)  # fmt: skip
            since = {tp.partition: tp.offset for tp in found}
        out = {}
        for p in parts:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout)
            start = max(low, sel.from_offset or 0, (start_at or {}).get(p, 0))
            if p in since:
                start = max(start, since[p] if since[p] >= 0 else high)
            end = high if sel.to_offset is None else min(high, sel.to_offset + 1)
            if start < end:
                out[p] = (start, end)
        return out

    def read(self, bounds: dict[int, tuple[int, int]]) -> Iterator[DeadLetterRecord]:
        """Every record in the bounds, partition by partition in offset order."""
        for p, (start, end) in sorted(bounds.items()):
            for msg in scan_partition(self._consumer, self.topic, p, start, end, self.timeout):
                yield DeadLetterRecord.of(msg)


def parse_since(value: str) -> datetime:
    """RFC 3339 time, or a duration back from now: 30m, 2h, 7d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return datetime.fromtimestamp(time.time() - int(value[:-1]) * units[value[-1]], UTC)
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
