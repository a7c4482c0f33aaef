"""scan_partition with a stand-in consumer: it asks for no more than the range holds, a scan that ends early
(a break, an exception, the consumer closed first) leaves no second error behind (issue #26), and the end of the
partition ends the scan at once (issue #24)."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from ordersctl.adapters.kafka_scan import scan_partition


class FakeConsumer:
    """Holds ``count`` records of one partition; records what it was asked; refuses calls once closed."""

    def __init__(self, count: int, eof: bool = False) -> None:
        self.count = count
        self.eof = eof  # enable.partition.eof: one end-of-partition event once every record was returned
        self.position = 0
        self.asked: list[int] = []
        self.assigned: list[TopicPartition] = []
        self.closed = False

    def _open(self) -> None:
        if self.closed:
            raise RuntimeError("Consumer closed")

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._open()
        self.assigned = partitions

    def unassign(self) -> None:
        self._open()
        self.assigned = []

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self._open()
        self.asked.append(num_messages)
        batch = [Message(topic="t", partition=0, offset=o, value=b"{}")
                 for o in range(self.position, min(self.count, self.position + num_messages))]  # fmt: skip
        self.position += len(batch)
        if self.eof and self.position == self.count and len(batch) < num_messages:
            self.eof = False
            batch.append(
                Message(topic="t", partition=0, offset=self.count, error=KafkaError(KafkaError._PARTITION_EOF))
            )
        return batch

    def close(self) -> None:
        self.closed = True


def _scan(consumer: FakeConsumer, end: int) -> Any:
    return scan_partition(consumer, "t", 0, 0, end)  # type: ignore[arg-type]


def test_it_never_asks_for_more_than_the_range_holds() -> None:
    consumer = FakeConsumer(1200)
    assert [m.offset() for m in _scan(consumer, 1200)] == list(range(1200))
    # 500 + 500 + 200: the last call asks for exactly what is left, so it need not wait for a full batch.
    assert consumer.asked == [500, 500, 200]
    assert consumer.assigned == []


def test_the_end_of_the_partition_ends_a_range_that_reaches_past_the_last_record() -> None:
    # The high watermark counts offsets no record is returned for (a transaction's marker, a compacted record,
    # an open transaction under read_committed): the scan must not wait out its timeout for them.
    consumer = FakeConsumer(5, eof=True)
    found = [m.offset() for m in scan_partition(consumer, "t", 0, 0, 6, timeout=30)]  # type: ignore[arg-type]
    assert found == [0, 1, 2, 3, 4]
    assert consumer.asked == [6]
    assert consumer.assigned == []


def test_a_break_unassigns_at_once() -> None:
    consumer = FakeConsumer(10)
    for _ in _scan(consumer, 10):
        break
    assert consumer.assigned == []


def test_a_scan_outliving_its_closed_consumer_raises_nothing_more(capsys: pytest.CaptureFixture[str]) -> None:
    consumer = FakeConsumer(10)
    scan = _scan(consumer, 10)
    next(scan)
    consumer.close()
    scan.close()  # what the interpreter does when it finally drops the generator
    del scan
    gc.collect()
    assert "Traceback" not in capsys.readouterr().err


def test_an_exception_in_the_reader_leaves_one_error(capsys: pytest.CaptureFixture[str]) -> None:
    consumer = FakeConsumer(10)
    hook = sys.unraisablehook
    unraisable: list[Any] = []
    sys.unraisablehook = unraisable.append
    try:
        with pytest.raises(ValueError, match="reader failed"):
            for _ in _scan(consumer, 10):
                consumer.close()
                raise ValueError("reader failed")
        gc.collect()
    finally:
        sys.unraisablehook = hook
    assert unraisable == []
