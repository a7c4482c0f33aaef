"""The offset commit: sent asynchronously, then confirmed per partition by a wait that keeps polling.

Never ``commit(asynchronous=False)``: that call blocks until the broker answers and can wait forever when a
rebalance starts while it is outstanding (seen after a broker restart; the group then waits for this worker,
which waits for the group). A commit not confirmed in time is transient: the batch's commit is retried.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from ordersctl.errors import TransientError
from ordersctl.pipeline.fetch_buffer import FetchBuffer

log = logging.getLogger(__name__)
COMMIT_TIMEOUT_SECONDS = 10.0  # an offset commit not confirmed by then is retried (transient)
# The group moved on without us: the partition's next owner re-reads, and the store makes that a no-op.
LOST_GENERATION = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._NO_OFFSET,
}
CommitKey = frozenset[tuple[str, int, int]]


def next_offsets(records: list[Message]) -> dict[tuple[str, int], int]:
    """Per partition, the offset after the last of ``records``: what a commit of them names."""
    offsets: dict[tuple[str, int], int] = {}
    for m in records:
        key = (m.topic() or "", m.partition() or 0)
        offsets[key] = max(offsets.get(key, 0), (m.offset() or 0) + 1)
    return offsets


class OffsetCommitter:
    """Commits a batch's offsets for the partitions still ours. ``on_commit`` is the consumer's callback."""

    def __init__(self, buffer: FetchBuffer, timeout: float = COMMIT_TIMEOUT_SECONDS) -> None:
        self._buffer = buffer
        self.timeout = timeout
        self._awaited: CommitKey | None = None
        self._result: tuple[KafkaError | None, list[TopicPartition]] | None = None  # of the awaited one

    def commit(self, records: list[Message], *, wait: bool = True) -> None:
        """Commit and, with ``wait``, confirm every partition. Without it (a revoke callback, where the consumer
        cannot be polled) the commit is only sent: librdkafka completes it before the group moves on."""
        consumer = self._buffer.consumer
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        wanted = [TopicPartition(t, p, o) for (t, p), o in next_offsets(records).items() if (t, p) in assigned]
        if not wanted:
            return  # all revoked meanwhile: their next owner re-reads them, and the store makes that a no-op
        if not wait:
            self._send(wanted)
            return
        self._awaited = frozenset((tp.topic, tp.partition, tp.offset) for tp in wanted)
        self._result = None
        try:
            if not self._send(wanted):
                return
            deadline = time.monotonic() + self.timeout
            while self._result is None:
                if time.monotonic() > deadline:
                    raise TransientError(f"offset commit not confirmed within {self.timeout:.0f} s")
                self._buffer.poll_meanwhile()
            self._check(*self._result)
        finally:
            self._awaited = self._result = None

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Commit results arrive here, from poll/consume on the main thread."""
        if frozenset((tp.topic, tp.partition, tp.offset) for tp in partitions) == self._awaited:
            self._result = (err, partitions)
        elif err is not None or any(tp.error is not None for tp in partitions):
            # A commit sent from a revoke callback, or one given up on: its records are re-read by their owner.
            log.warning("offset commit not applied", extra={"error": err.str() if err else "per partition"})

    def _send(self, wanted: list[TopicPartition]) -> bool:
        """False if librdkafka refused the commit at once (handled like a refusal from the broker)."""
        try:
            self._buffer.consumer.commit(offsets=wanted, asynchronous=True)
        except KafkaException as exc:
            self._check(exc.args[0], [])
            return False
        return True

    @staticmethod
    def _check(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            if err.code() in LOST_GENERATION:
                log.warning("commit skipped after a rebalance", extra={"error": err.str()})
                return
            raise TransientError(f"offset commit failed: {err.str()}")
        for tp in partitions:
            if tp.error is not None and tp.error.code() not in LOST_GENERATION:
                raise TransientError(f"offset commit failed for {tp.topic}[{tp.partition}]: {tp.error.str()}")
