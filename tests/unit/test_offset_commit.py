"""The offset commit: sent without waiting, refusals sent again unless covered, settled (polling) at the end.

The consumer is a stand-in implementing the PollingConsumer protocol: like librdkafka, it delivers commit
results through the ``on_commit`` callback, from ``poll`` only. (The commit against the real broker,
including a broker restart, is covered by tests/e2e/test_ingest.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from ordersctl.pipeline import offset_committer
from ordersctl.pipeline.fetch_buffer import FetchBuffer
from ordersctl.pipeline.offset_committer import CommitAnswers, OffsetCommitter

OnCommit = Callable[[KafkaError | None, list[TopicPartition]], None]
Answer = Callable[[list[TopicPartition]], tuple[KafkaError | None, list[TopicPartition]]]


class FakeConsumer:
    """``answer`` says what the broker replies to a commit, delivered on the ``answer_after``-th poll."""

    def __init__(self, on_commit: OnCommit, answer: Answer | None, answer_after: int = 2) -> None:
        self.on_commit = on_commit
        self.answer = answer
        self.answer_after = answer_after
        self.polls = 0
        self.committed: list[list[TopicPartition]] = []
        self.incoming: list[Message] = []

    def assignment(self) -> list[TopicPartition]:
        # confluent-kafka holds the GIL while librdkafka's main thread answers this: never asked per commit.
        raise AssertionError("the committer asked the consumer for its assignment")

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None:
        assert asynchronous, "a synchronous commit can block forever"
        self.committed.append(offsets)

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        raise AssertionError("committing never fills a batch")

    def poll(self, timeout: float = -1) -> Message | None:
        self.polls += 1
        if self.answer is not None and self.committed and self.polls == self.answer_after:
            err, parts = self.answer(self.committed[-1])
            self.on_commit(err, parts)
        return self.incoming.pop(0) if self.incoming else None

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass


def _record(offset: int = 41) -> Message:
    return Message(topic="orders", partition=2, offset=offset, key=b"uid-1", value=b"{}")


def _committer(answer: Answer | None) -> tuple[OffsetCommitter, FakeConsumer, list[str]]:
    answers = CommitAnswers()
    consumer = FakeConsumer(answers.on_commit, answer, answer_after=1)
    resent: list[str] = []
    committer = OffsetCommitter(FetchBuffer(consumer, 10), answers, on_resend=lambda: resent.append("commit"))
    committer.assigned([TopicPartition("orders", 2)])  # the worker's on_assign
    return committer, consumer, resent


class RefusedPartition(TopicPartition):
    """A commit result with a per-partition error, as librdkafka reports it (TopicPartition.error is read-only)."""

    def __init__(self, tp: TopicPartition, error: KafkaError) -> None:
        super().__init__(tp.topic, tp.partition, tp.offset)
        self._refusal: KafkaError | None = error

    @property
    def error(self) -> KafkaError | None:
        return self._refusal

    @error.setter
    def error(self, value: KafkaError | None) -> None:
        self._refusal = value


def _refused(code: int, parts: list[TopicPartition]) -> list[TopicPartition]:
    return [RefusedPartition(p, KafkaError(code)) for p in parts]


def _sent(consumer: FakeConsumer) -> list[int]:
    return [tp.offset for offsets in consumer.committed for tp in offsets]


@pytest.fixture(autouse=True)
def _resend_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offset_committer, "RESEND_AFTER_SECONDS", 0.0)


def test_a_commit_is_sent_without_waiting_for_its_answer() -> None:
    # Waiting stopped the worker's fetching for a round trip per batch, and bounding what it polled meanwhile
    # paused its partitions, which discards librdkafka's prefetch: one worker reached 0.62 of the ceiling.
    committer, consumer, _ = _committer(lambda parts: (None, parts))
    committer.commit([_record(40), _record(41)])
    assert _sent(consumer) == [42]
    assert consumer.polls == 0, "the commit waited for the broker's answer"
    assert committer.outstanding == 1
    assert committer.settle(timeout=1)  # the answer comes through poll, as librdkafka serves it
    assert committer.outstanding == 0 and consumer.polls == 1


def test_only_partitions_assigned_and_not_since_revoked_are_committed() -> None:
    # What is ours comes from the rebalance callbacks (assigned, forget), not from asking the consumer.
    committer, consumer, _ = _committer(None)
    committer.assigned([TopicPartition("orders", 3)])  # an incremental assignment adds to the ones before
    committer.commit(
        [_record(41), Message(topic="orders", partition=3, offset=7), Message(topic="orders", partition=5, offset=9)]
    )
    assert sorted((tp.partition, tp.offset) for tp in consumer.committed[-1]) == [(2, 42), (3, 8)]
    committer.forget({("orders", 2)})
    committer.commit([_record(50), Message(topic="orders", partition=3, offset=8)])
    assert [(tp.partition, tp.offset) for tp in consumer.committed[-1]] == [(3, 9)]
    committer.forget({("orders", 3)})
    committer.commit([_record(51)])
    assert len(consumer.committed) == 2, "a commit went out for partitions no longer ours"


def test_a_refused_commit_is_sent_again_and_counted() -> None:
    committer, consumer, resent = _committer(lambda p: (None, _refused(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, p)))
    committer.commit([_record()])
    consumer.poll(0)  # the refusal
    committer.resend_refused()
    assert _sent(consumer) == [42, 42]
    assert resent == ["commit"]


def test_a_refused_commit_already_covered_by_a_later_one_is_not_sent_again() -> None:
    # Sending it again could move the committed offset back below orders already committed past it.
    committer, consumer, resent = _committer(None)
    committer.commit([_record(41)])
    committer.commit([_record(51)])
    consumer.on_commit(None, _refused(KafkaError.REQUEST_TIMED_OUT, [TopicPartition("orders", 2, 42)]))
    committer.resend_refused()
    assert _sent(consumer) == [42, 52] and resent == []
    consumer.on_commit(None, _refused(KafkaError.REQUEST_TIMED_OUT, [TopicPartition("orders", 2, 52)]))
    committer.resend_refused()
    assert _sent(consumer) == [42, 52, 52] and resent == ["commit"]


def test_a_whole_commit_refused_is_sent_again() -> None:
    committer, consumer, _ = _committer(lambda p: (KafkaError(KafkaError._WAIT_COORD), p))
    committer.commit([_record()])
    consumer.poll(0)
    committer.resend_refused()
    assert _sent(consumer) == [42, 42]


def test_a_commit_refused_after_a_rebalance_is_not_sent_again() -> None:
    committer, consumer, resent = _committer(lambda p: (KafkaError(KafkaError.REBALANCE_IN_PROGRESS), p))
    committer.commit([_record()])
    assert committer.settle(timeout=1)  # no error: the next owner re-reads
    assert _sent(consumer) == [42] and resent == []


def test_a_refused_commit_of_a_partition_revoked_meanwhile_is_left_to_its_next_owner() -> None:
    committer, consumer, resent = _committer(lambda p: (None, _refused(KafkaError.REQUEST_TIMED_OUT, p)))
    committer.commit([_record()])
    committer.forget({("orders", 2)})
    consumer.poll(0)
    committer.resend_refused()
    assert _sent(consumer) == [42] and resent == []


def test_settling_polls_until_answered_and_gives_up_in_time() -> None:
    committer, consumer, _ = _committer(None)
    committer.commit([_record()])
    assert not committer.settle(timeout=0.3), "no answer came, yet settle said all commits were answered"
    assert consumer.polls > 2  # rebalance callbacks were served all along
