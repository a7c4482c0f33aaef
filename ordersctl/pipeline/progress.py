"""How far behind a worker is, when it reports, and when an idle worker may stop (``--stop-when-idle``)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from confluent_kafka import KafkaException, TopicPartition

from ordersctl.pipeline.counters import PipelineCounters

log = logging.getLogger(__name__)


class LagSource(Protocol):
    """The part of confluent_kafka.Consumer that tells which partitions the worker holds, and how far behind the
    whole topic is (asked of the broker: only for ``--stop-when-idle``)."""

    def assignment(self) -> list[TopicPartition]: ...
    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]: ...
    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any: ...
    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]: ...


# How often librdkafka hands the consumer's statistics to ``LagStats.on_stats`` (from within consume()).
STATISTICS_INTERVAL_MS = 1000
# A worker blocked this long asks the broker for its partitions' end offsets when it reports: the statistics'
# stopped with the fetching. Not sooner: a request may wait behind a fetch long poll (fetch.wait.max.ms), and
# the worker notices its store finish only after the report; all of a report's requests share one second.
BLOCKED_END_OFFSETS_AFTER = 3.0
END_OFFSETS_SECONDS = 1.0


class LagStats:
    """The lag of each partition as librdkafka knows it, from its statistics: the partition's end offset (from its
    fetches) minus the offset committed (the group's, fetched at assignment, then each commit of ours). No request
    is made for it: the offsets asked of the broker from the consume loop waited behind the consumer's own fetch
    long poll on the same connection (up to fetch.wait.max.ms, 500 ms), holding every order that arrived meanwhile,
    and timing out so often that the lag fell back to a guess (docs/performance.md: what a report cost).

    A partition whose fetching stopped (a store stuck: the fetched orders fill librdkafka's queue) keeps its last
    end offset there: its lag stops growing while orders go on arriving. ``Progress`` asks the broker for the end
    offsets then (``since``: where the lag counts from, the committed offset or the log's start)."""

    def __init__(self) -> None:
        self.lags: dict[tuple[str, int], int] = {}
        self.since: dict[tuple[str, int], int] = {}

    def on_stats(self, raw: str) -> None:
        """librdkafka's ``stats_cb``."""
        lags: dict[tuple[str, int], int] = {}
        since: dict[tuple[str, int], int] = {}
        for topic, doc in json.loads(raw).get("topics", {}).items():
            for key, part in doc.get("partitions", {}).items():
                if int(key) >= 0 and (lag := partition_lag(part)) is not None:
                    lags[(topic, int(key))] = lag
                    since[(topic, int(key))] = lag_start(part)
        self.lags, self.since = lags, since


def lag_start(part: dict[str, Any]) -> int:
    """Where a partition's lag counts from: its committed offset, or with none the log's start."""
    committed = int(part.get("committed_offset", -1))
    return committed if committed >= 0 else max(0, int(part.get("lo_offset", 0)))


def partition_lag(part: dict[str, Any]) -> int | None:
    """One partition's lag from its statistics: librdkafka's ``consumer_lag`` (its end offset, the last stable
    one under read_committed, minus the committed offset); with nothing committed yet for the group, from the log's
    start (where the worker starts reading); None while the end offset is unknown."""
    if (lag := int(part.get("consumer_lag", -1))) >= 0:
        return lag
    end = next((int(part[k]) for k in ("ls_offset", "hi_offset") if int(part.get(k, -1)) >= 0), None)
    if end is None:
        return None
    return max(0, end - max(0, int(part.get("lo_offset", 0))))


class Progress:
    """Reports the worker's counters every ``every`` seconds, and what it is blocked on and for how long. Its lag is
    the group's on the partitions it holds: end offsets minus committed offsets (``LagStats``, fed by the
    consumer's statistics; the broker's end offsets once blocked), so it grows while a store is stuck, whatever
    was fetched meanwhile."""

    def __init__(
        self,
        consumer: LagSource,
        counters: PipelineCounters,
        topic: str,
        every: float,
        report: Callable[[dict[str, Any]], None] | None,
        stop_when_idle: float | None,
        clock: Callable[[], float] = time.monotonic,
        lags: LagStats | None = None,
        *,
        postgres: threading.Event,
    ) -> None:
        self.consumer = consumer
        self.lags = lags if lags is not None else LagStats()
        self._counters = counters
        self._topic = topic
        self._every = every
        self._report = report
        self._stop_when_idle = stop_when_idle
        self._clock = clock
        self._last = clock()
        # For the supervisor's /readyz: the group gave this worker its partitions (maybe none) and has not taken
        # them away as lost; and it reaches PostgreSQL (``postgres``: set while its outbox relay's last page did).
        self.joined = False
        self._postgres = postgres
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
        stats.lag = self._assignment_lag()
        blocked = self._blocked
        stats.blocked = f"{blocked[0]} {self._clock() - blocked[1]:.0f}s" if blocked is not None else ""
        if self._report is not None:
            self._report(stats.as_dict() | {"joined": self.joined, "postgres": self._postgres.is_set()})
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
        """The group's lag on our own partitions, from the latest statistics; a partition not in them yet (just
        assigned) counts when they come. Blocked for a while, the end offsets are the broker's."""
        total = 0
        lags, since = self.lags.lags, self.lags.since
        now = self._clock()
        fresh_ends = self._blocked is not None and now - self._blocked[1] >= BLOCKED_END_OFFSETS_AFTER
        deadline = now + END_OFFSETS_SECONDS
        for tp in self.consumer.assignment():
            key = (tp.topic, tp.partition)
            lag = lags.get(key)
            if lag is None:
                continue
            if fresh_ends and key in since:
                end = self._end_offset(tp, deadline - self._clock())
                fresh_ends = end is not None  # one unanswered request is enough: the others would wait as long
                lag = max(lag, (end or 0) - since[key])
            self._counters.partition_lag(tp.topic, tp.partition, lag)
            total += lag
        return total

    def _end_offset(self, tp: TopicPartition, seconds: float) -> int | None:
        """The partition's end offset as the broker says now; None when it does not answer within ``seconds``
        (the reason the worker is stuck, maybe) or the report's time is spent: the last known lag stands."""
        if seconds <= 0.001:  # librdkafka waits in whole milliseconds
            return None
        try:
            return self.consumer.get_watermark_offsets(tp, timeout=seconds, cached=False)[1]
        except KafkaException:
            return None

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
