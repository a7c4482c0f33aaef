"""The worker's progress: report cadence, the group's lag, what a blocked worker waits on, and when an idle worker
may stop."""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from ordersctl.config import PipelineSettings
from ordersctl.pipeline import retry_policy
from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.pipeline.fetch_buffer import FetchBuffer
from ordersctl.pipeline.progress import LagStats, Progress
from ordersctl.pipeline.retry_policy import RetryPolicy
from ordersctl.pipeline.stats import WorkerStats
from tests.fake_consumer import FakeConsumer
from tests.fakes import FakeClock, message


def _progress(
    consumer: FakeConsumer, idle: float | None = 3.0, postgres: threading.Event | None = None
) -> tuple[Progress, list[dict[str, Any]]]:
    reports: list[dict[str, Any]] = []
    postgres = postgres if postgres is not None else threading.Event()
    progress = Progress(
        consumer, PipelineCounters(), "orders", 2.0, reports.append, idle, consumer.clock, postgres=postgres
    )
    consumer.stats_cb = progress.lags.on_stats
    return progress, reports


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


def test_the_report_says_whether_the_worker_reaches_postgresql_as_its_relay_last_did() -> None:
    reached = threading.Event()  # the relay's: set while its last page reached PostgreSQL
    progress, reports = _progress(_consumer({}), postgres=reached)
    progress.report()
    reached.set()
    progress.report()
    reached.clear()
    progress.report()
    assert [r["postgres"] for r in reports] == [False, True, False]


def test_lag_is_the_groups_committed_lag_not_how_far_the_worker_fetched() -> None:
    # A worker stuck on a store goes on fetching: its positions reach the end while nothing is committed. Its lag
    # read 0 then (from positions and cached end offsets), with every fetched order still waiting.
    consumer = _consumer({0: 2})  # partition 1: nothing committed yet, its 5 messages wait
    consumer.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
    consumer.positions = {0: 5, 1: 5}
    progress, reports = _progress(consumer)
    consumer.consume(0, 0)  # librdkafka serves its statistics from within consume()
    progress.report()
    assert reports[-1]["lag"] == (5 - 2) + 5


def test_the_lag_is_read_from_librdkafkas_statistics_without_asking_the_broker() -> None:
    """The report asked the broker for committed and end offsets from the consume loop, and the request waited
    behind the consumer's own fetch long poll (600-1,000 ms a report on an idle worker): no query now."""
    consumer = _consumer({0: 2, 1: 4})
    consumer.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])

    def no_query(*args: object, **kwargs: object) -> list[TopicPartition]:
        raise AssertionError("the report asked the broker")

    consumer.committed = no_query  # type: ignore[method-assign]
    progress, reports = _progress(consumer)
    progress.report()
    assert reports[-1]["lag"] == 0, "no statistics yet: nothing known, nothing asked"
    consumer.consume(0, 0)
    progress.report()
    assert reports[-1]["lag"] == (5 - 2) + (5 - 4)


def test_a_partition_without_a_known_end_is_left_out_and_the_ua_partition_ignored() -> None:
    lags = LagStats()
    parts = {"0": {"consumer_lag": -1, "hi_offset": -1001, "ls_offset": -1001, "lo_offset": -1001},
             "1": {"consumer_lag": 7}, "2": {"consumer_lag": -1, "ls_offset": 30, "lo_offset": 10},
             "-1": {"consumer_lag": 99}}  # fmt: skip
    lags.on_stats(json.dumps({"topics": {"orders": {"partitions": parts}}}))
    assert lags.lags == {("orders", 1): 7, ("orders", 2): 20}


def test_a_worker_waiting_on_a_store_says_on_what_and_for_how_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_policy, "REPORT_SLICE_SECONDS", 0.01)
    consumer = _consumer({})
    progress, reports = _progress(consumer)
    store: Future[str] = Future()

    def meanwhile() -> None:  # the store hangs (a lost PostgreSQL host) for three reports
        consumer.clock.advance(2.0)
        progress.report_if_due()
        if len(reports) == 3:
            store.set_result("stored")

    policy = RetryPolicy(FetchBuffer(consumer, 10), threading.Event(), PipelineSettings(), PipelineCounters(),
                         meanwhile, consumer.clock, progress.blocked)  # fmt: skip
    assert policy.until_done("store", lambda: "a second attempt", first=store) == "stored"
    assert [r["blocked"] for r in reports] == ["store 2s", "store 4s", "store 6s"]
    progress.report()
    assert reports[-1]["blocked"] == ""
    assert WorkerStats(lag=7, blocked="w0:store 6s").line().endswith(" lag=7 blocked=w0:store 6s")


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


def test_a_worker_blocked_for_a_while_counts_the_orders_that_arrived_since_its_fetching_stopped() -> None:
    # A store stuck (a PostgreSQL host lost): the fetched orders fill librdkafka's queue, its fetching stops, and
    # the statistics' end offsets with it. The progress line said lag=31 with 15,000 orders waiting.
    consumer = _consumer({0: 2, 1: 4})
    consumer.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
    progress, reports = _progress(consumer)
    consumer.consume(0, 0)  # the last statistics before the fetching stopped: ends 5 and 5
    consumer.log += [message(0, o, b"{}") for o in range(5, 105)]  # 100 more arrive on partition 0
    progress.report()
    assert reports[-1]["lag"] == (5 - 2) + (5 - 4), "not blocked: the statistics, no request"
    progress.blocked("store")
    consumer.clock.advance(2.0)
    progress.report()
    assert reports[-1]["lag"] == 4, "blocked for less than BLOCKED_END_OFFSETS_AFTER: still no request"
    consumer.clock.advance(1.0)
    progress.report()
    assert reports[-1]["lag"] == (105 - 2) + (5 - 4)
    assert reports[-1]["blocked"] == "store 3s"


def test_a_blocked_worker_that_cannot_reach_the_broker_keeps_the_last_known_lag() -> None:
    consumer = _consumer({0: 2, 1: 4})
    consumer.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
    progress, reports = _progress(consumer)
    consumer.consume(0, 0)
    asked: list[int] = []

    def unreachable(partition: TopicPartition, timeout: float = -1, cached: bool = False) -> tuple[int, int]:
        asked.append(partition.partition)
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT))

    consumer.get_watermark_offsets = unreachable  # type: ignore[method-assign]
    progress.blocked("store")
    consumer.clock.advance(5.0)
    progress.report()
    assert reports[-1]["lag"] == 3 + 1 and reports[-1]["blocked"] == "store 5s"
    assert asked == [0], "after one request timed out, the others were not made to wait as long"


def test_a_blocked_workers_report_spends_at_most_a_second_on_end_offsets_in_all() -> None:
    # Twelve partitions each answering slowly (behind a fetch long poll): the report must not hold the worker,
    # which notices its store finish only after it, for twelve of those waits.
    consumer = FakeConsumer(FakeClock(), [message(p, o, b"{}") for p in range(12) for o in range(5)])
    consumer.committed_offsets = {("orders", p): 0 for p in range(12)}
    consumer.assign([TopicPartition("orders", p) for p in range(12)])
    progress, reports = _progress(consumer)
    consumer.consume(0, 0)
    real = consumer.get_watermark_offsets
    timeouts: list[float] = []

    def slow(partition: TopicPartition, timeout: float = -1, cached: bool = False) -> tuple[int, int]:
        timeouts.append(timeout)
        consumer.clock.advance(0.4)  # answered after 400 ms
        return real(partition, timeout, cached)

    consumer.get_watermark_offsets = slow  # type: ignore[method-assign]
    progress.blocked("store")
    consumer.clock.advance(3.0)
    progress.report()
    assert len(timeouts) == 3 and timeouts[0] == 1.0 and timeouts[-1] < 0.25, timeouts
    assert reports[-1]["lag"] == 12 * 5
