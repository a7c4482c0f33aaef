"""The offset commit: sent after the batch's transaction, never waited for on the way.

A worker that waited for each commit's answer stopped fetching for a round trip per batch, and the messages
it polled meanwhile had to be bounded by pausing, which makes librdkafka discard its prefetch
(confluentinc/librdkafka#5343; docs/performance.md: what it cost). Not waiting costs no guarantee:
a commit is still sent only once the batch is stored, commits of a partition reach the coordinator in order,
so each one covers every earlier, and a commit that never lands only makes the partition's next reader re-read
orders the store already has (duplicates, a no-op).

A commit the broker refuses is sent again, unless a later commit of that partition already went out (the
later one covers it). A refusal because the group moved on is not: the partition's next owner re-reads.
Never ``commit(asynchronous=False)``: it blocks until the broker answers and can wait forever when a rebalance
starts while it is outstanding (seen after a broker restart).

Which partitions are ours is learnt from the worker's rebalance callbacks (``assigned``, ``forget``), not asked
of the consumer per commit: confluent-kafka's ``assignment()`` waits for librdkafka's main thread to answer while
holding the GIL, and on a busy machine that was a tenth of a worker's Python time at 2,000 orders/s
(docs/performance.md). The callbacks run where the commits are sent: on the worker's main thread (within
consume()), or at the very end in the thread that closes the consumer while the main thread waits for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from ordersctl.errors import TransientError
from ordersctl.pipeline.batches import Partition
from ordersctl.pipeline.fetch_buffer import FetchBuffer

log = logging.getLogger(__name__)
RESEND_AFTER_SECONDS = 1.0  # a refused commit is sent again no sooner (a coordinator that is loading)
SETTLE_SECONDS = 10.0  # at shutdown, how long to wait for the commits sent
# The group moved on without us: the partition's next owner re-reads, and the store makes that a no-op.
LOST_GENERATION = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._NO_OFFSET,
}


def next_offsets(records: list[Message]) -> dict[Partition, int]:
    """Per partition, the offset after the last of ``records``: what a commit of them names."""
    offsets: dict[Partition, int] = {}
    for m in records:
        key = (m.topic() or "", m.partition() or 0)
        offsets[key] = max(offsets.get(key, 0), (m.offset() or 0) + 1)
    return offsets


class CommitAnswers:
    """What was committed per partition and what the broker answered: the consumer's ``on_commit`` callback
    (served by the worker's own consume/poll, on the main thread). Built before the consumer, which takes its
    callback, and shared with the ``OffsetCommitter`` that sends through that consumer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.latest: dict[Partition, int] = {}  # the last offset sent, per partition
        self.refused: dict[Partition, int] = {}  # to send again (still the latest of its partition)
        self.resend_at = 0.0
        self.outstanding = 0  # commits sent and not answered yet

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """A commit's answer."""
        self.outstanding = max(0, self.outstanding - 1)
        refused: dict[int, str] = {}
        for tp in partitions:
            error = err or tp.error
            if error is None or error.code() in LOST_GENERATION:
                continue
            refused[tp.partition] = error.str()
            key = (tp.topic, tp.partition)
            if self.latest.get(key) == tp.offset:
                self.refused[key] = tp.offset
                self.resend_at = self.clock() + RESEND_AFTER_SECONDS
        if refused:
            log.warning("offset commit refused", extra={"partitions": sorted(refused), "error": min(refused.values())})

    def sent(self, offsets: list[TopicPartition]) -> None:
        self.outstanding += 1
        for tp in offsets:
            key = (tp.topic, tp.partition)
            self.latest[key] = tp.offset
            self.refused.pop(key, None)  # this commit covers a refused one

    def forget(self, gone: set[Partition]) -> None:
        for key in gone:
            self.latest.pop(key, None)
            self.refused.pop(key, None)

    def take_due(self) -> dict[Partition, int]:
        """The refused commits to send again now (none before ``RESEND_AFTER_SECONDS``)."""
        if not self.refused or self.clock() < self.resend_at:
            return {}
        again, self.refused = self.refused, {}
        return again


class OffsetCommitter:
    """Commits a batch's offsets for the partitions still ours, through ``buffer``'s consumer, whose answers
    reach ``answers``; ``resend_refused`` runs in the worker's loop, ``settle`` before it leaves."""

    def __init__(
        self, buffer: FetchBuffer, answers: CommitAnswers, on_resend: Callable[[], None] = lambda: None
    ) -> None:
        self._buffer = buffer
        self._answers = answers
        self._on_resend = on_resend
        self._owned: set[Partition] = set()  # the partitions assigned to us, from the rebalance callbacks

    @property
    def outstanding(self) -> int:
        return self._answers.outstanding

    def commit(self, records: list[Message]) -> None:
        self._send(next_offsets(records))

    @property
    def owned(self) -> frozenset[Partition]:
        return frozenset(self._owned)

    def assigned(self, partitions: list[TopicPartition]) -> None:
        """Partitions given to us (an assignment, or under an incremental protocol the partitions added)."""
        self._owned.update((tp.topic, tp.partition) for tp in partitions)

    def forget(self, gone: set[Partition]) -> None:
        """Partitions no longer ours: what they still need is their next owner's to commit."""
        self._owned.difference_update(gone)
        self._answers.forget(gone)

    def resend_refused(self) -> None:
        again = self._answers.take_due()
        if again:
            self._on_resend()
            self._send(again)

    def settle(self, timeout: float = SETTLE_SECONDS) -> bool:
        """Wait (polling) until every commit sent is answered and none is left to send again; False on timeout."""
        answers = self._answers
        deadline = answers.clock() + timeout
        while answers.outstanding or answers.refused:
            if answers.clock() > deadline:
                return False
            self.resend_refused()
            self._buffer.poll_meanwhile()
        return True

    def _send(self, offsets: dict[Partition, int]) -> None:
        owned = self._owned
        wanted = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in owned]
        if not wanted:
            return  # all revoked meanwhile: their next owner re-reads them, and the store makes that a no-op
        try:
            self._buffer.consumer.commit(offsets=wanted, asynchronous=True)
        except KafkaException as exc:  # refused at once, before any request: the caller retries the batch's
            error: KafkaError = exc.args[0]
            if error.code() in LOST_GENERATION:
                return
            raise TransientError(f"offset commit failed: {error.str()}") from exc
        self._answers.sent(wanted)
