"""Replay selection without a broker: a reader stand-in (a DlqReader whose Kafka reads are replaced)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from confluent_kafka import Message, TopicPartition

from ordersctl.dlq import format as fmt
from ordersctl.dlq.reader import DlqReader, Selection
from ordersctl.dlq.records import DeadLetterRecord
from ordersctl.dlq.replay import Replayer, ReplayRequest


class ListReader(DlqReader):
    """Serves records from a list and notes how far it has been read."""

    def __init__(self, records: list[DeadLetterRecord]) -> None:
        self.records = records
        self.read_so_far = 0
        self.topic = "orders.dlq"
        self.timeout = 1.0

    def partitions(self) -> list[int]:
        return [0]

    def bounds(self, sel: Selection, start_at: dict[int, int] | None = None) -> dict[int, tuple[int, int]]:
        return {0: (0, len(self.records))}

    def read(self, bounds: dict[int, tuple[int, int]]) -> Iterator[DeadLetterRecord]:
        for record in self.records:
            self.read_so_far += 1
            yield record


class NoProgress:
    """The replay group's consumer: nothing committed yet (a dry run commits nothing)."""

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[False]) -> list[TopicPartition]:
        raise AssertionError("a dry run commits no progress")


def _record(offset: int, reason: str = "conflict") -> DeadLetterRecord:
    headers = [(fmt.REASON, reason.encode()), (fmt.ORIGINAL_TOPIC, b"orders")]
    return DeadLetterRecord.of(Message(topic="o.dlq", partition=0, offset=offset, key=b"k", value=b"payload",
                                       headers=[*headers]))  # fmt: skip


def test_a_dry_run_hands_over_each_record_as_it_is_read_and_keeps_none() -> None:
    reader = ListReader([_record(n) for n in range(5)])
    seen_when: list[tuple[int, int]] = []
    replayer = Replayer(reader, NoProgress(), producer=None)
    result = replayer.run(
        ReplayRequest(Selection(), dry_run=True),
        on_would_send=lambda r: seen_when.append((r.offset, reader.read_so_far)),
    )
    assert seen_when == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)], "each record is handed over before the next is read"
    assert result.would_send == 5 and result.replayed == 0


def test_a_dry_run_limit_stops_reading_at_the_limit_and_skips_other_reasons() -> None:
    reader = ListReader([_record(0), _record(1, "invalid_json"), _record(2), _record(3), _record(4)])
    seen: list[int] = []
    replayer = Replayer(reader, NoProgress(), producer=None)
    result = replayer.run(
        ReplayRequest(Selection(reason="conflict"), limit=2, dry_run=True),
        on_would_send=lambda r: seen.append(r.offset),
    )
    assert seen == [0, 2] and result.would_send == 2
    assert reader.read_so_far == 3
