"""What a consume worker works through, as typed Protocols: the real clients satisfy them (pipeline/wiring.py
assembles those), and the unit tests' fakes (tests/fakes.py) do too."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from confluent_kafka import Message, TopicPartition

from ordersctl.adapters.order_store.writes import HasRows, Saved
from ordersctl.pipeline.dead_letters import DeadLetter
from ordersctl.pipeline.fetch_buffer import PollingConsumer

RebalanceCallback = Callable[[Any, list[TopicPartition]], None]
T = TypeVar("T", bound=HasRows)
R = TypeVar("R")


class LagSource(Protocol):
    """The part of confluent_kafka.Consumer that tells how far behind the worker and its group are."""

    def assignment(self) -> list[TopicPartition]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]: ...
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...
    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]: ...


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
    def close(self) -> None: ...


class OrderSink(Protocol):
    """Stores a batch in one transaction (on a connection of its own): one typed outcome per item."""

    def save(self, batch: Sequence[T]) -> list[Saved[T]]: ...


class DeadLetters(Protocol):
    """Sends dead letters and returns once every one is confirmed (else raises TransientError)."""

    def send(self, letters: Sequence[DeadLetter]) -> None: ...


class Relay(Protocol):
    """The outbox relay: ``run_forever`` is its thread's body; ``wake`` says new events were committed."""

    idle: threading.Event

    def run_forever(self, stop: threading.Event) -> None: ...
    def wake(self) -> None: ...


class StoreExecutor(Protocol):
    """Where batches are stored while the main thread fetches the next (a thread pool; inline in unit tests)."""

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]: ...
    def shutdown(self, wait: bool = True) -> None: ...
