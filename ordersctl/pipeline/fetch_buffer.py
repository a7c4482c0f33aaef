"""What a worker fetches for its next batch, while filling it or waiting (on a retry, on its last commits), with the
pause state of its partitions. One place owns both: a wait never loses a message nor leaves a partition paused."""

from __future__ import annotations

from typing import Literal, Protocol

from confluent_kafka import Message, TopicPartition

from ordersctl.pipeline.batches import Partition, partition_of


class PollingConsumer(Protocol):
    """The part of confluent_kafka.Consumer that filling a batch, waiting, pausing and committing use."""

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]: ...
    def poll(self, timeout: float = -1) -> Message | None: ...
    def pause(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...
    def assignment(self) -> list[TopicPartition]: ...
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None: ...


class FetchBuffer:
    """Messages polled meanwhile (``carry``) and whether the worker paused its partitions (``paused``)."""

    def __init__(self, consumer: PollingConsumer, batch_size: int) -> None:
        self.consumer = consumer
        self.batch_size = batch_size
        self.carry: list[Message] = []
        self.paused = False

    def take(self) -> list[Message]:
        carried, self.carry = self.carry, []
        return carried

    def room(self) -> int:
        """How many more messages the next batch takes."""
        return max(0, self.batch_size - len(self.carry))

    def fetch(self, timeout: float, *, first: bool = False) -> int:
        """Fetch for the next batch, up to its room, or with ``first`` one message; librdkafka's consume(n) returns
        once it has n, or at the timeout. The extend is a statement of its own: a revoke inside consume() replaces
        ``carry`` (``forget``), so ``carry += consume()`` would extend the list from before it."""
        if not (room := self.room()):
            return 0
        fetched = self.consumer.consume(num_messages=1 if first else room, timeout=timeout)
        self.carry.extend(fetched)
        return len(fetched)

    def forget(self, gone: set[Partition]) -> None:
        """Messages held back from partitions we no longer own belong to their next owner now."""
        self.carry = [m for m in self.carry if partition_of(m) not in gone]

    def poll_meanwhile(self) -> None:
        """Serve callbacks (commit results, rebalances) while waiting; a message that arrives starts the next
        batch. Past a batch's worth, every partition is paused until the wait ends."""
        msg = self.consumer.poll(0.05)
        if msg is None or msg.error() is not None:
            return
        self.carry.append(msg)
        if len(self.carry) >= self.batch_size:
            self.pause_all()

    def hold_while_paused(self, timeout: float) -> None:
        """Poll with every partition paused (a retry's wait); a message already on its way is kept, and its
        partition paused again (a resume of the others must not let it run ahead)."""
        self.pause_all()
        msg = self.consumer.poll(timeout)
        if msg is not None and msg.error() is None:
            self.carry.append(msg)
            self.consumer.pause([TopicPartition(msg.topic() or "", msg.partition() or 0)])

    def pause_all(self) -> None:
        if not self.paused:
            self.consumer.pause(self.consumer.assignment())
            self.paused = True

    def resume_all(self) -> None:
        if self.paused:
            self.consumer.resume(self.consumer.assignment())
            self.paused = False
