"""The fake consumer of the unit tests: a group member of one topic that fetches, pauses, commits and
rebalances as librdkafka does in the ways the worker relies on, on a clock moved by hand (no broker, no sleep)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Literal

from confluent_kafka import KafkaError, Message, TopicPartition

from ordersctl.pipeline.ports import RebalanceCallback
from tests.fakes import FakeClock, Partition


@dataclass
class Script:
    """What happens at the fake consumer's n-th ``consume`` call (counted from 1), before it returns."""

    revoke: dict[int, list[int]] = field(default_factory=dict)  # call -> partitions revoked
    assign: dict[int, list[int]] = field(default_factory=dict)  # call -> partitions assigned (the new assignment)
    lose: dict[int, list[int]] = field(default_factory=dict)  # call -> partitions lost
    call: dict[int, Callable[[], None]] = field(default_factory=dict)  # call -> anything else (say a stop)


class FakeConsumer:
    """A group member of one topic. ``pending`` messages are fetched in order from partitions not paused, and
    ``arrivals`` (time, message) join them when ``clock`` reaches their time. As librdkafka's, ``consume(n, t)``
    returns once it has n messages or t has passed, and ``poll(t)`` at the first message; a wait moves ``clock``
    on instead of sleeping (to the arrival that ends it, or by its timeout). Commits are recorded and
    answered (successfully) on the next ``poll``/``consume``, like librdkafka's ``on_commit``; ``check_commit``
    is called with each commit as it is sent. The assignment (``partitions``) is given on the first consume."""

    def __init__(
        self,
        clock: FakeClock,
        messages: Sequence[Message] = (),
        partitions: Sequence[int] = (0, 1),
        topic: str = "orders",
        script: Script | None = None,
        incremental: bool = False,
        arrivals: Sequence[tuple[float, Message]] = (),
    ) -> None:
        self.clock = clock
        self.topic = topic
        # The group's protocol: eager (assign the whole assignment) or incremental (cooperative-sticky, KIP-848:
        # add and remove the partitions given). The worker must use the calls of its protocol, as librdkafka
        # refuses the others.
        self.incremental = incremental
        self.pending = list(messages)
        self.arrivals = sorted(arrivals, key=lambda arrival: arrival[0])  # not in ``pending`` yet
        self.log = [*messages, *(m for _, m in self.arrivals)]  # every message of the topic, fetched or not
        self.in_transit: list[Message] = []
        self.positions: dict[int, int] = {}  # per partition, the next offset to fetch (-1001: none yet)
        self.initial = [TopicPartition(topic, p) for p in partitions]
        self.script = script or Script()
        self.on_commit: Callable[[KafkaError | None, list[TopicPartition]], None] = lambda err, parts: None
        # librdkafka's stats_cb: served from consume(), as librdkafka serves it every statistics.interval.ms.
        self.stats_cb: Callable[[str], None] | None = None
        self.check_commit: Callable[[list[TopicPartition]], None] = lambda offsets: None
        self.callbacks: dict[str, RebalanceCallback | None] = {}
        self.assigned: list[TopicPartition] = []
        self.paused: set[int] = set()
        self.committed_offsets: dict[Partition, int] = {}
        self.commits: list[list[TopicPartition]] = []
        self.consumes = 0
        self.rebalances: list[tuple[str, float]] = []  # (kind, clock) of each
        self.closed = False
        self._answers: list[list[TopicPartition]] = []

    # -- the group
    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        on_lost: RebalanceCallback | None = None,
    ) -> None:
        assert topics == [self.topic]
        self.callbacks = {"assign": on_assign, "revoke": on_revoke, "lost": on_lost}

    def assign(self, partitions: list[TopicPartition]) -> None:
        assert not self.incremental, "assign() under an incremental protocol: librdkafka refuses it"
        self.assigned = list(partitions)

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        assert self.incremental, "incremental_assign() under the eager protocol"
        self.assigned += [tp for tp in partitions if tp.partition not in {a.partition for a in self.assigned}]

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        assert self.incremental, "incremental_unassign() under the eager protocol"
        gone = {tp.partition for tp in partitions}
        self.assigned = [tp for tp in self.assigned if tp.partition not in gone]

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def rebalance(self, kind: Literal["assign", "revoke", "lost"], partitions: list[int]) -> None:
        """Run the worker's callback as librdkafka would from within poll/consume. A revoke or loss keeps the
        other partitions; an assignment is the new whole assignment (eager) or the partitions added (incremental)."""
        self.rebalances.append((kind, self.clock()))
        tps = [TopicPartition(self.topic, p) for p in partitions]
        callback = self.callbacks[kind]
        assert callback is not None
        callback(self, tps)
        if kind != "assign":
            self.assigned = [tp for tp in self.assigned if tp.partition not in partitions]

    # -- fetching
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        self.consumes += 1
        assert self.consumes < 100_000, "the worker never stopped"
        if not self.assigned and self.consumes == 1:
            self.rebalance("assign", [tp.partition for tp in self.initial])
        for kind, when in (("revoke", self.script.revoke), ("lost", self.script.lose), ("assign", self.script.assign)):
            if self.consumes in when:
                self.rebalance(kind, when[self.consumes])  # type: ignore[arg-type]
        if self.stats_cb is not None:
            self.stats_cb(self.statistics())
        if self.consumes in self.script.call:
            self.script.call[self.consumes]()
        self._answer()
        return self._wait_for(num_messages, timeout)

    def poll(self, timeout: float = -1) -> Message | None:
        self._answer()
        if self.in_transit:  # fetched before a pause: delivered all the same, as librdkafka's queue does
            return self.in_transit.pop(0)
        taken = self._wait_for(1, timeout)
        return taken[0] if taken else None

    def _wait_for(self, count: int, timeout: float) -> list[Message]:
        """Up to ``count`` messages: those fetchable now, then those arriving within ``timeout`` until there are
        ``count``; the clock ends where the wait did."""
        assert timeout >= 0, "an unbounded wait"
        deadline = self.clock() + timeout
        taken = self._take(count)
        while len(taken) < count:
            upcoming = [at for at, _ in self.arrivals if at <= deadline]
            if not upcoming:
                self.clock.now = max(self.clock.now, deadline)
                break
            self.clock.now = max(self.clock.now, upcoming[0])
            taken += self._take(count - len(taken))
        return taken

    def arrive(self) -> None:
        """The arrivals whose time has come join the messages to fetch."""
        while self.arrivals and self.arrivals[0][0] <= self.clock():
            self.pending.append(self.arrivals.pop(0)[1])

    def _take(self, limit: int) -> list[Message]:
        self.arrive()
        mine = {tp.partition for tp in self.assigned} - self.paused
        taken = [m for m in self.pending if m.partition() in mine][:limit]
        for m in taken:
            self.pending.remove(m)
        return taken

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    # -- committing
    def commit(self, *, offsets: list[TopicPartition], asynchronous: Literal[True]) -> None:
        assert asynchronous, "a synchronous commit can block forever"
        self.check_commit(offsets)
        self.commits.append(offsets)
        for tp in offsets:
            self.committed_offsets[(tp.topic, tp.partition)] = tp.offset
        self._answers.append(offsets)

    def _answer(self) -> None:
        answers, self._answers = self._answers, []
        for offsets in answers:
            self.on_commit(None, offsets)

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.committed_offsets.get((tp.topic, tp.partition), -1001))
                for tp in partitions]  # fmt: skip

    # -- lag
    def statistics(self) -> str:
        """The consumer's statistics as librdkafka writes them, for the partitions it holds: ``consumer_lag`` from
        the end offset and the committed one (-1 when nothing is committed), the log's start and end."""
        partitions = {}
        for tp in self.assigned:
            end, committed = self.end_offset(tp.partition), self.committed_offsets.get((tp.topic, tp.partition), -1001)
            partitions[str(tp.partition)] = {
                "partition": tp.partition, "lo_offset": 0, "hi_offset": end, "ls_offset": end,
                "committed_offset": committed, "consumer_lag": end - committed if committed >= 0 else -1,
            }  # fmt: skip
        partitions["-1"] = {"partition": -1, "consumer_lag": -1, "hi_offset": -1001}  # librdkafka's UA partition
        return json.dumps({"type": "consumer", "topics": {self.topic: {"topic": self.topic, "partitions": partitions}}})

    def end_offset(self, partition: int) -> int:
        """Where the partition's log ends: past every message the test gave, fetched or not."""
        return 1 + max((m.offset() or 0 for m in self.log if m.partition() == partition), default=-1)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.positions.get(tp.partition, -1001)) for tp in partitions]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]:
        return 0, self.end_offset(partition.partition)

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        partitions = {tp.partition: None for tp in self.initial}
        return SimpleNamespace(topics={self.topic: SimpleNamespace(partitions=partitions)})

    def close(self) -> None:
        self.closed = True
