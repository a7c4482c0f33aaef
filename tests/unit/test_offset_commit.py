"""The worker's offset commit: asynchronous, confirmed per partition, and never a wait without polling.

The consumer is a stand-in with confluent_kafka.Consumer's methods: like librdkafka, it delivers commit
results through the ``on_commit`` callback, from ``poll`` only. (The commit against the real broker,
including a broker restart, is covered by tests/e2e/test_ingest.py.)"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from confluent_kafka import KafkaError, TopicPartition

from ordersctl.config import load_settings
from ordersctl.errors import TransientError
from ordersctl.pipeline import worker as worker_module
from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.worker import ConsumeWorker
from ordersctl.runtime import Runtime
from tests.unit.test_dead_letters import FakeMessage

OnCommit = Callable[[KafkaError | None, list[TopicPartition]], None]


class FakeConsumer:
    """``answer`` says what the broker replies to a commit, delivered on the ``answer_after``-th poll."""

    def __init__(
        self, on_commit: OnCommit, answer: Callable[[list[TopicPartition]], Any] | None, answer_after: int = 2
    ) -> None:
        self.on_commit = on_commit
        self.answer = answer
        self.answer_after = answer_after
        self.polls = 0
        self.committed: list[list[TopicPartition]] = []
        self.incoming: list[Any] = []

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("orders", 2)]

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert asynchronous, "a synchronous commit can block forever"
        self.committed.append(offsets)

    def poll(self, timeout: float) -> Any:
        self.polls += 1
        if self.answer is not None and self.committed and self.polls == self.answer_after:
            err, parts = self.answer(self.committed[-1])
            self.on_commit(err, parts)
        return self.incoming.pop(0) if self.incoming else None

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def resume(self, partitions: list[TopicPartition]) -> None:
        pass


class Arrived(FakeMessage):
    def error(self) -> None:
        return None


def _worker(answer: Callable[[list[TopicPartition]], Any] | None) -> tuple[ConsumeWorker, FakeConsumer]:
    settings = load_settings(overrides={"kafka": {"bootstrap_servers": "127.0.0.1:1"}})
    worker = ConsumeWorker(Runtime(settings), WorkerOptions(batch_size=10), threading.Event())
    consumer = FakeConsumer(worker._on_commit, answer)
    worker._consumer = consumer  # type: ignore[assignment]
    return worker, consumer


@dataclass
class PartitionResult:
    """A commit result for one partition, as librdkafka reports it (TopicPartition's error is read-only)."""

    topic: str
    partition: int
    offset: int
    error: KafkaError | None


def _with_error(code: int) -> Callable[[list[TopicPartition]], Any]:
    def answer(parts: list[TopicPartition]) -> Any:
        return None, [PartitionResult(p.topic, p.partition, p.offset, KafkaError(code)) for p in parts]

    return answer


def test_commit_waits_for_the_broker_and_keeps_what_arrives_meanwhile() -> None:
    worker, consumer = _worker(lambda parts: (None, parts))
    consumer.incoming = [Arrived()]
    worker._commit([FakeMessage()])  # type: ignore[list-item]
    assert [(tp.topic, tp.partition, tp.offset) for tp in consumer.committed[0]] == [("orders", 2, 42)]
    assert consumer.polls >= 2  # the result came from poll, as librdkafka serves it
    assert len(worker._carry) == 1  # the next batch starts with the message polled meanwhile


def test_a_commit_never_confirmed_is_transient_and_polling_went_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_module, "COMMIT_TIMEOUT_SECONDS", 0.3)
    worker, consumer = _worker(None)
    with pytest.raises(TransientError, match="not confirmed"):
        worker._commit([FakeMessage()])  # type: ignore[list-item]
    assert consumer.polls > 2  # rebalance callbacks were served all along


def test_a_commit_refused_after_a_rebalance_is_skipped() -> None:
    worker, _ = _worker(lambda parts: (KafkaError(KafkaError.REBALANCE_IN_PROGRESS), parts))
    worker._commit([FakeMessage()])  # type: ignore[list-item]  # no error: the next owner re-reads


def test_a_partition_refused_for_another_reason_is_retried() -> None:
    worker, _ = _worker(_with_error(KafkaError.COORDINATOR_LOAD_IN_PROGRESS))
    with pytest.raises(TransientError, match=r"orders\[2\]"):
        worker._commit([FakeMessage()])  # type: ignore[list-item]


def test_a_revoke_callback_waits_for_a_batch_being_stored_only_so_long() -> None:
    from concurrent.futures import Future

    from ordersctl.pipeline.worker import InFlight, Prepared

    worker, _ = _worker(lambda parts: (None, parts))
    worker.revoke_wait_seconds = 0.2
    never: Future[list[Any]] = Future()  # a store stuck on a lock the revoke cannot wait out
    worker._inflight.append(InFlight(Prepared([FakeMessage()]), never, frozenset({"uid-1"})))  # type: ignore[list-item]
    callback = threading.Thread(target=worker._on_revoke, args=(None, [TopicPartition("orders", 2)]), daemon=True)
    callback.start()
    callback.join(5)
    assert not callback.is_alive(), "the revoke callback (and with it the group's rebalance) waited without bound"
    assert len(worker._inflight) == 1, "the unfinished batch is left to the main loop, uncommitted"
