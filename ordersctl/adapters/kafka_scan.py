"""Reading a range of one partition with assign: no group is joined and nothing is committed.

The one loop that reads a bounded range, used by the DLQ tooling and by ``trace`` (orders and events topics).
A consumer built with ``READER_SETTINGS`` answers at once at the end of a range: it says when it has reached the
partition's end (no poll waits for records that will not come) and the broker does not hold its fetches.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Message, TopicPartition

from ordersctl.errors import TransientError

_BATCH = 500

# For a consumer that reads ranges with assign (an observer, the DLQ tools), never a pipeline's consumer.
READER_SETTINGS: dict[str, Any] = {
    # An end-of-partition event: a range that ends at the partition's end (or at its last committed record, under
    # read_committed, or before compacted or control records) is known to be done at once, not after a timeout.
    "enable.partition.eof": True,
    # The broker holds a fetch that finds nothing new for up to this long (librdkafka's default: 500 ms). Every
    # other request on that connection (metadata, offsets, the next partition's fetch) queues behind it: with
    # the default each step of a status or a trace waited up to half a second (10 ms: still 10 ms a step).
    "fetch.wait.max.ms": 1,
    # Once the bootstrap connection has named the broker, librdkafka opens a new connection to it, but not within
    # half the reconnect backoff of the last one (default 100 ms): the first request of a command waited 50 ms.
    # A short-lived reader connects again sooner after a failure too (the backoff still doubles up to its max).
    "reconnect.backoff.ms": 20,
}


def scan_partition(consumer: Consumer, topic: str, partition: int, start: int, end: int,
                   timeout: float = 10.0) -> Iterator[Message]:  # fmt: skip
    """Every record of ``topic[partition]`` with ``start <= offset < end``, in offset order.

    Stops early at an end-of-partition event (``READER_SETTINGS``). Raises TransientError when no record
    arrives for ``timeout`` seconds before ``end`` is reached (the broker is gone, or the records were deleted
    under us). The consumer is left unassigned."""
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
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and msg.partition() == partition:
                        return  # nothing more is held now: the rest of the range will not come
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
