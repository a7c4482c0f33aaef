"""Reading a range of one partition with assign: no group is joined and nothing is committed.

The one loop that reads a bounded range, used by the DLQ tooling and by ``trace`` (orders and events topics).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition

from ordersctl.errors import TransientError

_BATCH = 500


def scan_partition(consumer: Consumer, topic: str, partition: int, start: int, end: int,
                   timeout: float = 10.0) -> Iterator[Message]:  # fmt: skip
    """Every record of ``topic[partition]`` with ``start <= offset < end``, in offset order.

    Raises TransientError when no record arrives for ``timeout`` seconds before ``end`` is reached (the
    broker is gone, or the records were deleted under us). The consumer is left unassigned."""
    # Offset 0 may already be deleted; the beginning is where the log starts now.
    consumer.assign([TopicPartition(topic, partition, start if start > 0 else OFFSET_BEGINNING)])
    try:
        position = start
        idle_deadline = time.monotonic() + timeout
        while position < end:
            # Never ask for more than the range still holds: consume() returns once it has that many, where a
            # full batch asked for at the end of a range would wait out the timeout (0.5 s per partition read).
            batch = consumer.consume(min(_BATCH, end - position), 0.5)
            if not batch and time.monotonic() > idle_deadline:
                raise TransientError(f"no data from {topic}[{partition}] at offset {position}")
            for msg in batch:
                if msg.error() is not None:
                    continue
                idle_deadline = time.monotonic() + timeout
                offset = msg.offset() or 0
                if offset >= end:
                    return
                position = offset + 1
                yield msg
    finally:
        _unassign(consumer)


def _unassign(consumer: Consumer) -> None:
    # RuntimeError: the consumer was closed before this scan was (an exception's traceback kept the generator
    # alive past the client's close). A closed consumer holds no assignment, so there is nothing left to undo.
    with contextlib.suppress(RuntimeError):
        consumer.unassign()
