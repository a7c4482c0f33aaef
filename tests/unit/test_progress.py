"""The worker's progress: report cadence, lag from local state, and when an idle worker may stop."""

from __future__ import annotations

import threading
from typing import Any

from confluent_kafka import TopicPartition

from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.pipeline.progress import Progress
from tests.fakes import FakeClock, FakeConsumer, message


def _progress(consumer: FakeConsumer, idle: float | None = 3.0) -> tuple[Progress, list[dict[str, Any]]]:
    reports: list[dict[str, Any]] = []
    return Progress(consumer, PipelineCounters(), "orders", 2.0, reports.append, idle, consumer.clock), reports


def _consumer(committed: dict[int, int]) -> FakeConsumer:
    """Partitions 0 and 1 with 5 messages each; ``committed`` per partition."""
    clock = FakeClock()
    consumer = FakeConsumer(clock, [message(p, o, b"{}") for p in (0, 1) for o in range(5)])
    consumer.committed_offsets = {("orders", p): o for p, o in committed.items()}
    return consumer


def test_reports_come_every_interval_with_the_counts() -> None:
    consumer = _consumer({})
    progress, reports = _progress(consumer)
    progress.report_if_due()
    assert reports == []
    consumer.clock.advance(2.0)
    progress.report_if_due()
    progress.report_if_due()
    assert len(reports) == 1 and reports[0]["consumed"] == 0


def test_lag_of_the_assignment_comes_from_positions_and_cached_watermarks() -> None:
    consumer = _consumer({})
    consumer.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
    consumer.positions = {0: 2, 1: 2}
    progress, reports = _progress(consumer)
    progress.report()
    assert reports[-1]["lag"] == 2 * (5 - 2)


def test_an_idle_worker_stops_only_after_the_idle_time_with_the_topic_drained_and_the_relay_idle() -> None:
    drained = _consumer({0: 5, 1: 5})
    progress, _ = _progress(drained, idle=3.0)
    relay_idle = threading.Event()
    relay_idle.set()
    now = 1000.0
    assert not progress.idle_done(now + 2.9, now, now, relay_idle), "not idle long enough since the last message"
    assert not progress.idle_done(now + 3.0, now + 1.0, now, relay_idle), "idle time restarts at an assignment"
    assert progress.idle_done(now + 3.0, now, now, relay_idle)
    relay_idle.clear()
    assert not progress.idle_done(now + 3.0, now, now, relay_idle), "events still to publish"


def test_an_idle_worker_waits_while_any_partition_of_the_topic_has_uncommitted_orders() -> None:
    # Whoever owns them: during a rebalance this worker may own nothing while others' partitions still wait.
    behind = _consumer({0: 5})  # partition 1 never committed: its 5 messages are lag
    progress, _ = _progress(behind, idle=3.0)
    relay_idle = threading.Event()
    relay_idle.set()
    assert not progress.idle_done(1003.0, 1000.0, 1000.0, relay_idle)


def test_without_stop_when_idle_a_worker_never_stops_by_itself() -> None:
    progress, _ = _progress(_consumer({0: 5, 1: 5}), idle=None)
    relay_idle = threading.Event()
    relay_idle.set()
    assert not progress.idle_done(10_000.0, 0.0, 0.0, relay_idle)
