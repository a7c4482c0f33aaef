"""scan_partition with a stand-in consumer: it asks for no more than the range holds, and a scan that ends
early (a break, an exception, the consumer closed first) leaves no second error behind (issue #26)."""

from __future__ import annotations

import gc
import sys
from typing import Any

import pytest
from confluent_kafka import Message, TopicPartition

from ordersctl.adapters.kafka_scan import scan_partition


class FakeConsumer:
    """Holds ``count`` records of one partition; records what it was asked; refuses calls once closed."""

    def __init__(self, count: int) -> None:
        self.count = count
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
