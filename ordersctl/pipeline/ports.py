"""What a consume worker works through: its clients as typed Protocols, which the real clients satisfy and so do
the unit tests' fakes (tests/fakes.py), and ``WorkerPorts``, everything it receives built (pipeline/wiring.py
assembles the real ones)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from confluent_kafka import Message, TopicPartition

from ordersctl.adapters.order_store.writes import HasRows, Saved
from ordersctl.dlq.letters import DeadLetter
from ordersctl.errors import FatalError
from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.pipeline.fetch_buffer import FetchBuffer, PollingConsumer
from ordersctl.pipeline.offset_committer import OffsetCommitter
from ordersctl.pipeline.progress import LagSource, Progress
from ordersctl.pipeline.retry_policy import RetryPolicy
from ordersctl.tracing import NO_TRACING, Tracing

RebalanceCallback = Callable[[Any, list[TopicPartition]], None]
T = TypeVar("T", bound=HasRows)
R = TypeVar("R")


class WorkerConsumer(PollingConsumer, LagSource, Protocol):
    """The consumer a worker reads with: confluent_kafka.Consumer, as far as the worker uses it."""

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...
    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def incremental_assign(self, partitions: list[TopicPartition]) -> None: ...
    def incremental_unassign(self, partitions: list[TopicPartition]) -> None: ...
    def close(self) -> None: ...


class OrderSink(Protocol):
    """Stores a batch in one transaction (on a connection of its own): one typed outcome per item. With
    ``traceparents`` (tracing on), order_uid -> the traceparent the order's event carries on."""

    def save(self, batch: Sequence[T], traceparents: Mapping[str, str] | None = None) -> list[Saved[T]]: ...


class DeadLetters(Protocol):
    """Sends dead letters and returns once every one is confirmed (else raises TransientError)."""

    def send(self, letters: Sequence[DeadLetter]) -> None: ...


class Relay(Protocol):
    """The outbox relay: ``run_forever`` is its thread's body; ``wake`` says new events were committed; ``failure``
    is the error that cannot heal which ended its thread, if one did (the worker raises it)."""

    idle: threading.Event
    failure: FatalError | None

    def run_forever(self, stop: threading.Event) -> None: ...
    def wake(self) -> None: ...


class StoreExecutor(Protocol):
    """Where batches are stored while the main thread fetches the next (a thread pool; inline in unit tests)."""

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]: ...
    def shutdown(self, wait: bool = True) -> None: ...


@dataclass(frozen=True)
class Limits:
    """The sizes and waits of the loop, from the settings and the worker's options."""

    topic: str
    batch_size: int
    max_items: int
    batches_in_flight: int
    max_wait_seconds: float
    # Partitions come and go one by one (cooperative-sticky, or the consumer group protocol of KIP-848).
    incremental: bool = False


@dataclass(frozen=True)
class WorkerPorts:
    """Everything a worker works through, built before it (pipeline/wiring.py, or a unit test's fakes).

    ``buffer``, ``committer``, ``retry`` and ``progress`` are built on the same ``consumer``; ``counters`` is
    the metrics sink; ``executor`` runs the stores; ``clock`` is ``time.monotonic`` outside tests; ``tracing``
    is ``NO_TRACING`` unless ``[otel] enabled``."""

    consumer: WorkerConsumer
    store: OrderSink
    dead_letters: DeadLetters
    committer: OffsetCommitter
    relay: Relay
    clock: Callable[[], float]
    counters: PipelineCounters
    buffer: FetchBuffer
    retry: RetryPolicy
    progress: Progress
    executor: StoreExecutor
    tracing: Tracing = NO_TRACING
