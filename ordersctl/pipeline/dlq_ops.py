"""Operating the dead-letter topic: read it without joining a group, and replay dead letters.

Replay tracks its progress in a consumer group of its own (one per selection), committed only after a batch
is confirmed by the broker, so the same replay run twice sends nothing twice. A message whose replay count
reached the limit is skipped, so a poison message cannot loop forever.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from ordersctl.errors import OrdersError, TransientError
from ordersctl.pipeline.dead_letters import OWN_HEADERS, REPLAY_COUNT, Headers, header_dict, key_uid

log = logging.getLogger(__name__)
DEFAULT_REPLAY_LIMIT = 3


@dataclass(frozen=True)
class DeadLetterRecord:
    """A dead letter as the on-call engineer sees it."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]
    raw_headers: list[tuple[str, bytes]]

    @property
    def reason(self) -> str:
        return self.headers.get("dlq.reason", "unknown")

    @property
    def replay_count(self) -> int:
        try:
            return int(self.headers.get(REPLAY_COUNT, "0"))
        except ValueError:
            return 0

    @property
    def failed_at(self) -> str:
        return self.headers.get("dlq.failed_at", "")

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
                "topic": self.headers.get("dlq.original.topic"),
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


def _record(msg: Message) -> DeadLetterRecord:
    raw: Any = msg.headers() or []
    pairs = [(k, v if isinstance(v, bytes) else (v or "").encode()) for k, v in raw]
    return DeadLetterRecord(msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value(), header_dict(pairs), pairs)


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
            self._consumer.assign([TopicPartition(self.topic, p, start if start > 0 else OFFSET_BEGINNING)])
            position = start
            idle_deadline = time.monotonic() + self.timeout
            while position < end:
                msg = self._consumer.poll(0.5)
                if msg is None:
                    if time.monotonic() > idle_deadline:
                        raise TransientError(f"no data from {self.topic}[{p}] at offset {position}")
                    continue
                if msg.error() is not None:
                    continue
                idle_deadline = time.monotonic() + self.timeout
                offset = msg.offset() or 0
                if offset >= end:
                    break
                position = offset + 1
                yield _record(msg)
        self._consumer.unassign()


@dataclass
class Summary:
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    oldest: str = ""
    newest: str = ""

    def add(self, record: DeadLetterRecord) -> None:
        self.count += 1
        self.reasons[record.reason] += 1
        stamp = record.failed_at
        if stamp and (not self.oldest or stamp < self.oldest):
            self.oldest = stamp
        if stamp and stamp > self.newest:
            self.newest = stamp


# ---------------------------------------------------------------- replay


def replay_headers(record: DeadLetterRecord, dlq_topic: str) -> Headers:
    """The original headers, plus the replay count and where in the DLQ the message came from."""
    kept: Headers = [(k, v) for k, v in record.raw_headers if not OWN_HEADERS.match(k)]
    return [
        *kept,
        (REPLAY_COUNT, str(record.replay_count + 1).encode()),
        ("dlq.replay.from.topic", dlq_topic.encode()),
        ("dlq.replay.from.partition", str(record.partition).encode()),
        ("dlq.replay.from.offset", str(record.offset).encode()),
    ]


@dataclass
class ReplayResult:
    replayed: int = 0  # confirmed by the broker
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    would_send: int = 0


def replay_group(base_group: str, sel: Selection, to_topic: str | None) -> str:
    """One progress group per selection, so replaying one reason never hides another's dead letters."""
    parts = [base_group, "dlq-replay", sel.reason or "all"]
    if to_topic:
        parts.append(f"to-{to_topic}")
    return ".".join(parts)


class Replayer:
    def __init__(
        self,
        reader: DlqReader,
        consumer: Consumer,
        producer: Producer,
        *,
        replay_limit: int = DEFAULT_REPLAY_LIMIT,
        batch: int = 200,
        rate: float | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._reader = reader
        self._consumer = consumer  # the replay group's consumer, used for committed offsets only
        self._producer = producer
        self._limit = replay_limit
        self._batch = batch
        self._rate = rate
        self.timeout = timeout

    def committed(self, partitions: list[int]) -> dict[int, int]:
        tps = [TopicPartition(self._reader.topic, p) for p in partitions]
        try:
            found = self._consumer.committed(tps, timeout=self._reader.timeout)
        except KafkaException as exc:
            raise TransientError(f"cannot read replay progress: {exc}") from None
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}

    def run(
        self,
        sel: Selection,
        *,
        to_topic: str | None,
        limit: int | None,
        dry_run: bool,
        on_progress: Callable[[int], None] | None = None,
        on_would_send: Callable[[DeadLetterRecord], None] | None = None,
    ) -> ReplayResult:
        """Send the selected dead letters. ``limit`` caps what is sent, counted as it is sent: delivery reports
        come later, so counting them would let a whole batch through. A dry run hands each record to
        ``on_would_send`` as it is read, so nothing is held in memory."""
        result = ReplayResult()
        parts = [sel.partition] if sel.partition is not None else self._reader.partitions()
        bounds = self._reader.bounds(sel, start_at=self.committed(parts))
        pending: list[DeadLetterRecord] = []  # records whose offsets the next commit covers
        started = time.monotonic()
        sent = 0
        for record in self._reader.read(bounds):
            pending.append(record)
            target = self._target(record, sel, to_topic, result)
            if target is not None:
                sent += 1
                if dry_run:
                    result.would_send += 1
                    if on_would_send is not None:
                        on_would_send(record)
                else:
                    self._send(record, target, result)
                    self._pace(started, sent)
            if on_progress is not None:
                on_progress(1)
            if limit is not None and sent >= limit:
                break  # progress ends at the last record sent: the next run starts right after it
            if len(pending) >= self._batch and not dry_run:
                self._confirm_and_commit(pending, result)
                pending = []
        if pending and not dry_run:
            self._confirm_and_commit(pending, result)
        return result

    def _target(
        self, record: DeadLetterRecord, sel: Selection, to_topic: str | None, result: ReplayResult
    ) -> str | None:
        """Where a record goes, or None when it is not to be sent (the reason counted in ``result.skipped``)."""
        if not sel.matches(record):
            return None
        if record.replay_count >= self._limit:
            result.skipped["replay limit"] += 1
            return None
        target = to_topic or record.headers.get("dlq.original.topic")
        if not target:
            result.skipped["no original topic"] += 1
        return target or None

    def _pace(self, started: float, sent: int) -> None:
        if self._rate:
            ahead = started + sent / self._rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def _send(self, record: DeadLetterRecord, target: str, result: ReplayResult) -> None:
        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is None:
                result.replayed += 1
            else:
                result.failed += 1
                log.error("replay send failed", extra={"error": err.str(), "dlq_offset": record.offset})

        while True:
            try:
                headers = replay_headers(record, self._reader.topic)
                self._producer.produce(target, key=record.key, value=record.value, headers=headers,
                                       on_delivery=delivered)  # fmt: skip
                break
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise TransientError(f"cannot replay to {target}: {exc}") from None
        self._producer.poll(0)

    def _confirm_and_commit(self, pending: list[DeadLetterRecord], result: ReplayResult) -> None:
        left = self._producer.flush(self.timeout)
        if left or result.failed:
            raise TransientError(f"{left + result.failed} replayed messages not confirmed; progress not committed")
        last: dict[int, int] = {}
        for r in pending:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
        offsets = [TopicPartition(self._reader.topic, p, o + 1) for p, o in last.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise TransientError(f"cannot commit replay progress: {exc}") from None


def parse_since(value: str) -> datetime:
    """RFC 3339 time, or a duration back from now: 30m, 2h, 7d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].isdigit():
        return datetime.fromtimestamp(time.time() - int(value[:-1]) * units[value[-1]], UTC)
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
