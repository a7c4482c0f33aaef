"""The offset commit: asynchronous, confirmed per partition, and never a wait without polling.

The consumer is a stand-in implementing the PollingConsumer protocol: like librdkafka, it delivers commit
results through the ``on_commit`` callback, from ``poll`` only. (The commit against the real broker,
including a broker restart, is covered by tests/e2e/test_ingest.py.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Literal

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition

from ordersctl.adapters.order_store import Outcome
from ordersctl.config import load_settings
from ordersctl.errors import TransientError
from ordersctl.pipeline.batches import InFlight, Prepared
from ordersctl.pipeline.fetch_buffer import FetchBuffer
from ordersctl.pipeline.offset_committer import OffsetCommitter
from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.worker import ConsumeWorker
from ordersctl.runtime import Runtime

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
        return [TopicPartition("orders", 2)]

    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None:
        assert asynchronous, "a synchronous commit can block forever"
        self.committed.append(offsets)

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


def _record() -> Message:
    return Message(topic="orders", partition=2, offset=41, key=b"uid-1", value=b"{}")


def _committer(answer: Answer | None, timeout: float = 10.0) -> tuple[OffsetCommitter, FakeConsumer, FetchBuffer]:
    buffer = FetchBuffer(batch_size=10)
    committer = OffsetCommitter(buffer, timeout=timeout)
    consumer = FakeConsumer(committer.on_commit, answer)
    buffer.bind(consumer)
    return committer, consumer, buffer


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


def _with_error(code: int) -> Answer:
    def answer(parts: list[TopicPartition]) -> tuple[KafkaError | None, list[TopicPartition]]:
        return None, [RefusedPartition(p, KafkaError(code)) for p in parts]

    return answer


def test_commit_waits_for_the_broker_and_keeps_what_arrives_meanwhile() -> None:
    committer, consumer, buffer = _committer(lambda parts: (None, parts))
    consumer.incoming = [_record()]
    committer.commit([_record()])
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.committed[0]] == [("orders", 2, 42)]
    assert consumer.polls >= 2  # the result came from poll, as librdkafka serves it
    assert len(buffer.carry) == 1  # the next batch starts with the message polled meanwhile


def test_a_commit_never_confirmed_is_transient_and_polling_went_on() -> None:
    committer, consumer, _ = _committer(None, timeout=0.3)
    with pytest.raises(TransientError, match="not confirmed"):
        committer.commit([_record()])
    assert consumer.polls > 2  # rebalance callbacks were served all along


def test_a_commit_refused_after_a_rebalance_is_skipped() -> None:
    committer, consumer, _ = _committer(lambda parts: (KafkaError(KafkaError.REBALANCE_IN_PROGRESS), parts))
    committer.commit([_record()])  # no error: the next owner re-reads
    assert len(consumer.committed) == 1, "sent once, and the refusal was not retried"


def test_a_partition_refused_for_another_reason_is_retried() -> None:
    committer, _, _ = _committer(_with_error(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))
    with pytest.raises(TransientError, match=r"orders\[2\]"):
        committer.commit([_record()])


def test_a_revoke_callback_waits_for_a_batch_being_stored_only_so_long() -> None:
    settings = load_settings(overrides={"kafka": {"bootstrap_servers": "127.0.0.1:1"}})
    worker = ConsumeWorker(Runtime(settings), WorkerOptions(batch_size=10), threading.Event())
    worker.buffer.bind(FakeConsumer(worker.committer.on_commit, None))
    worker.revoke_wait_seconds = 0.2
    never: Future[list[Outcome]] = Future()  # a store stuck on a lock the revoke cannot wait out
    worker._inflight.append(InFlight(Prepared([_record()]), never, frozenset({"uid-1"})))
    callback = threading.Thread(target=worker._on_revoke, args=(None, [TopicPartition("orders", 2)]), daemon=True)
    callback.start()
    callback.join(5)
    assert not callback.is_alive(), "the revoke callback (and with it the group's rebalance) waited without bound"
    assert len(worker._inflight) == 1, "the unfinished batch is left to the main loop, uncommitted"
