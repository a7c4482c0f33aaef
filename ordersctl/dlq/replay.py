"""Replaying dead letters to their original topic (or another), with the original key, value and headers.

Progress is kept in a consumer group of its own (one per selection) and committed only after the broker
confirmed every message sent before it, so the same replay run twice sends nothing twice. A message replayed
``replay_limit`` times is skipped, so a poison message cannot loop forever.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from confluent_kafka import KafkaException, TopicPartition

from ordersctl.adapters.kafka import ConfirmedSender, Outgoing, SendingProducer
from ordersctl.dlq import format as fmt
from ordersctl.dlq.reader import DlqReader, Selection
from ordersctl.dlq.records import DeadLetterRecord
from ordersctl.errors import ClientFailed, TransientError


def replay_headers(record: DeadLetterRecord, dlq_topic: str) -> fmt.Headers:
    """The original headers, plus the replay count and where in the DLQ the message came from."""
    kept: fmt.Headers = [(k, v) for k, v in record.raw_headers if not fmt.OWN_HEADERS.match(k)]
    return [
        *kept,
        (fmt.REPLAY_COUNT, str(record.replay_count + 1).encode()),
        (fmt.REPLAY_FROM_TOPIC, dlq_topic.encode()),
        (fmt.REPLAY_FROM_PARTITION, str(record.partition).encode()),
        (fmt.REPLAY_FROM_OFFSET, str(record.offset).encode()),
    ]


def replay_group(base_group: str, sel: Selection, to_topic: str | None) -> str:
    """One progress group per selection, so replaying one reason never hides another's dead letters."""
    parts = [base_group, "dlq-replay", sel.reason or "all"]
    if to_topic:
        parts.append(f"to-{to_topic}")
    return ".".join(parts)


@dataclass
class ReplayResult:
    replayed: int = 0  # confirmed by the broker
    skipped: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    would_send: int = 0


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay and how: the selection, a target topic instead of each original, at most ``limit``."""

    selection: Selection
    to_topic: str | None = None
    limit: int | None = None
    dry_run: bool = False


class ProgressConsumer(Protocol):
    """The replay group's consumer: it reads and commits the progress offsets, never subscribes."""

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]: ...
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]: ...


class Replayer:
    """Sends the selected dead letters; the replay group's consumer is used for committed offsets only."""

    def __init__(
        self,
        reader: DlqReader,
        progress_consumer: ProgressConsumer,
        producer: SendingProducer | None,
        *,
        replay_limit: int = fmt.DEFAULT_REPLAY_LIMIT,
        batch: int = 200,
        rate: float | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._reader = reader
        self._consumer = progress_consumer
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
        req: ReplayRequest,
        on_progress: Callable[[int], None] | None = None,
        on_would_send: Callable[[DeadLetterRecord], None] | None = None,
    ) -> ReplayResult:
        """Send the selected dead letters. ``limit`` caps what is sent, counted as it is sent: delivery reports
        come later, so counting them would let a whole batch through. A dry run hands each record to
        ``on_would_send`` as it is read, so nothing is held in memory."""
        result = ReplayResult()
        sender = None if req.dry_run else self._sender(result)
        sel = req.selection
        parts = [sel.partition] if sel.partition is not None else self._reader.partitions()
        pending: list[DeadLetterRecord] = []  # records whose offsets the next commit covers
        sent = 0
        for record in self._reader.read(self._reader.bounds(sel, start_at=self.committed(parts))):
            pending.append(record)
            target = self._target(record, req, result)
            if target is not None:
                sent += 1
                if sender is not None:
                    sender.send(self._outgoing(record, target))
                else:
                    result.would_send += 1
                    if on_would_send is not None:
                        on_would_send(record)
            if on_progress is not None:
                on_progress(1)
            if req.limit is not None and sent >= req.limit:
                break  # progress ends at the last record sent: the next run starts right after it
            if sender is not None and len(pending) >= self._batch:
                self._confirm_and_commit(sender, pending, result)
                pending = []
        if sender is not None and pending:
            self._confirm_and_commit(sender, pending, result)
        return result

    def _sender(self, result: ReplayResult) -> ConfirmedSender:
        if self._producer is None:
            raise ValueError("a replay that sends needs a producer")

        def confirmed(_offset: int) -> None:
            result.replayed += 1

        return ConfirmedSender(self._producer, timeout=self.timeout, rate=self._rate, on_delivered=confirmed)

    def _target(self, record: DeadLetterRecord, req: ReplayRequest, result: ReplayResult) -> str | None:
        """Where a record goes, or None when it is not to be sent (the reason counted in ``result.skipped``)."""
        if not req.selection.matches(record):
            return None
        if record.replay_count >= self._limit:
            result.skipped["replay limit"] += 1
            return None
        target = req.to_topic or record.original_topic
        if not target:
            result.skipped["no original topic"] += 1
        return target or None

    def _outgoing(self, record: DeadLetterRecord, target: str) -> Outgoing:
        headers = replay_headers(record, self._reader.topic)
        return Outgoing(target, record.value, record.key, headers, tag=record.offset)

    def _confirm_and_commit(self, sender: ConfirmedSender, pending: list[DeadLetterRecord], res: ReplayResult) -> None:
        report = sender.confirm()
        if report.fatal is not None:
            raise ClientFailed(f"replay producer failed: {report.fatal.str()}")
        if not report.complete:
            res.failed += len(report.failed) + len(report.unconfirmed)
            first = report.failed[0][1] if report.failed else "no delivery report in time"
            raise TransientError(f"{res.failed} replayed messages not confirmed ({first}); progress not committed")
        last: dict[int, int] = {}
        for r in pending:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
        offsets = [TopicPartition(self._reader.topic, p, o + 1) for p, o in last.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            raise TransientError(f"cannot commit replay progress: {exc}") from None
