"""How far behind a worker is, when it reports, and when an idle worker may stop (``--stop-when-idle``)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import KafkaException, TopicPartition

from ordersctl.pipeline.counters import PipelineCounters

log = logging.getLogger(__name__)


class LagSource(Protocol):
    """The part of confluent_kafka.Consumer that tells how far behind the worker and its group are."""

    def assignment(self) -> list[TopicPartition]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]: ...
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...
    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]: ...


# How long each question to the broker may take while reporting: a broker that does not answer (a partition)
# costs the loop at most this much per report, after which the lag keeps its last known value.
LAG_QUERY_SECONDS = 0.5


class Progress:
    """Reports the worker's counters every ``every`` seconds, and what it is blocked on and for how long. Its lag is
    the group's: the broker's end offsets of its partitions minus the offsets committed for them (a round trip or
    two per report), so it grows while a store is stuck, whatever was fetched meanwhile."""

    def __init__(
        self,
        consumer: LagSource,
        counters: PipelineCounters,
        topic: str,
        every: float,
        report: Callable[[dict[str, Any]], None] | None,
        stop_when_idle: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.consumer = consumer
        self._counters = counters
        self._topic = topic
        self._every = every
        self._report = report
        self._stop_when_idle = stop_when_idle
        self._clock = clock
        self._last = clock()
        # For the supervisor's /readyz: the group gave this worker its partitions (maybe none) and has not taken
        # them away as lost; and it reaches PostgreSQL (its outbox relay's last page did), once the relay runs.
        self.joined = False
        self.postgres: threading.Event | None = None
        self._blocked: tuple[str, float] | None = None  # (operation, since when)

    def blocked(self, operation: str | None) -> None:
        """The worker now waits on ``operation`` (``store``, ``dlq``, ``commit``) to complete; None: no longer."""
        self._blocked = None if operation is None else (operation, self._clock())

    def report_if_due(self) -> None:
        now = self._clock()
        if now - self._last >= self._every:
            self.report()
            self._last = now

    def report(self) -> None:
        stats = self._counters.stats
        try:
            stats.lag = self._assignment_lag()
        except KafkaException:
            # The group's offsets did not come in time (the broker away, or its coordinator behind a queue of
            # commits): what the worker has not fetched yet, from its own positions and the cached end offsets, is
            # a lower bound it knows without asking; the broker away, the lag keeps its last known value.
            with contextlib.suppress(KafkaException):
                stats.lag = max(stats.lag, self._fetch_lag())
        blocked = self._blocked
        stats.blocked = f"{blocked[0]} {self._clock() - blocked[1]:.0f}s" if blocked is not None else ""
        if self._report is not None:
            postgres = self.postgres is not None and self.postgres.is_set()
            self._report(stats.as_dict() | {"joined": self.joined, "postgres": postgres})
        log.debug("progress", extra=stats.as_dict())

    def idle_done(self, now: float, idle_from: float, last_message: float, relay_idle: threading.Event) -> bool:
        """Whether an idle worker may stop: idle for ``stop_when_idle`` seconds since its last message and since
        ``idle_from`` (its start, or the last assignment or loss of partitions), nothing left in the topic, and
        its relay idle too."""
        idle = self._stop_when_idle
        if idle is None or now - last_message < idle or now - idle_from < idle:
            return False
        # The whole topic, not just our assignment: during a rebalance (say a dead worker's session has not
        # expired yet) we may own nothing while others' partitions still wait.
        try:
            return self._topic_lag() == 0 and relay_idle.is_set()
        except KafkaException:
            return False

    def _assignment_lag(self) -> int:
        """The group's lag on our own partitions: fresh end offsets minus committed offsets. Not the fetch
        positions: while a store is stuck the worker goes on fetching (and a paused partition's cached end offset
        stops moving), which made the lag read 0 with thousands of orders waiting."""
        assignment = self.consumer.assignment()
        if not assignment:
            return 0
        total = 0
        for tp in self.consumer.committed(assignment, timeout=LAG_QUERY_SECONDS):
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=LAG_QUERY_SECONDS
            )
            lag = max(0, high - (tp.offset if tp.offset >= 0 else low))
            self._counters.partition_lag(tp.topic, tp.partition, lag)
            total += lag
        return total

    def _fetch_lag(self) -> int:
        """Cached end offsets minus fetch positions on our own partitions (no request to the broker)."""
        total = 0
        for tp in self.consumer.position(self.consumer.assignment()):
            if tp.offset >= 0:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                total += max(0, high - tp.offset)
        return total

    def _topic_lag(self) -> int:
        """The group's committed lag over every partition of the orders topic, whoever owns them now.

        Asks the broker (a round trip per partition): only used once the worker is idle."""
        meta = self.consumer.list_topics(self._topic, timeout=2).topics[self._topic]
        partitions = [TopicPartition(self._topic, p) for p in meta.partitions]
        total = 0
        for tp in self.consumer.committed(partitions, timeout=2):
            low, high = self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=2)
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total
