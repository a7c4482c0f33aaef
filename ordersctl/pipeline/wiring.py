"""The one place a consume worker is assembled: its clients come from the Runtime, everything else is built
here on them, and the worker receives the lot (cosmicpython's bootstrap)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import psycopg

from ordersctl.adapters.order_store.writes import OrderWrites, Saved, T
from ordersctl.dlq.letters import DeadLetterSender
from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.pipeline.fetch_buffer import FetchBuffer
from ordersctl.pipeline.offset_committer import CommitAnswers, OffsetCommitter
from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.outbox_relay import OutboxRelay
from ordersctl.pipeline.ports import Limits, WorkerPorts
from ordersctl.pipeline.progress import STATISTICS_INTERVAL_MS, LagStats, Progress
from ordersctl.pipeline.retry_policy import RetryPolicy
from ordersctl.pipeline.worker import ConsumeWorker
from ordersctl.runtime import Runtime

Report = Callable[[dict[str, Any]], None]
# A dead letter or an event not confirmed by then is retried (the worker's batch, the relay's page). linger.ms stays
# the default's 5 ms: the relay (and the DLQ sender) confirm with flush(), which sends at once whatever linger says
# (docs/performance.md: a lone event's flush with each linger), and batches at full speed.
PRODUCER_TIMEOUT = {"message.timeout.ms": 10_000}


class PooledWrites:
    """The worker's order sink: each batch on a pooled connection of its own (errors already translated)."""

    def __init__(self, connect: Callable[[], AbstractContextManager[psycopg.Connection[Any]]], writes: OrderWrites):
        self._connect = connect
        self._writes = writes

    def save(self, batch: Sequence[T], traceparents: Mapping[str, str] | None = None) -> list[Saved[T]]:
        with self._connect() as conn:
            return self._writes.save(conn, batch, traceparents)


def build_worker(
    runtime: Runtime, options: WorkerOptions, stop: threading.Event, report: Report | None = None
) -> ConsumeWorker:
    """A worker on ``runtime``'s clients; its metrics are served from here on when ``options`` asks."""
    s, k = runtime.settings, runtime.settings.kafka
    clock = time.monotonic
    counters = PipelineCounters()
    answers = CommitAnswers(clock)
    lags = LagStats()
    # librdkafka's statistics carry each partition's lag (LagStats): the progress report asks the broker nothing.
    statistics: dict[str, Any] = {"stats_cb": lags.on_stats, "statistics.interval.ms": STATISTICS_INTERVAL_MS}
    consumer = runtime.consumer(on_commit=answers.on_commit, **statistics)
    buffer = FetchBuffer(consumer, options.batch_size)
    relay = OutboxRelay(
        runtime.pg_connection, runtime.store.outbox, runtime.producer("events", **PRODUCER_TIMEOUT), k.events_topic,
        on_published=counters.events_published,
    )  # fmt: skip
    progress = Progress(
        consumer, counters, k.orders_topic, options.report_every, report, options.stop_when_idle, clock, lags,
        postgres=relay.reached_postgres,  # /readyz: the relay's last page reached PostgreSQL
    )  # fmt: skip
    ports = WorkerPorts(
        consumer=consumer,
        store=PooledWrites(runtime.pg_connection, runtime.store.writes),
        dead_letters=DeadLetterSender(runtime.producer("dlq", **PRODUCER_TIMEOUT), k.dlq_topic, k.group_id),
        committer=OffsetCommitter(buffer, answers, on_resend=lambda: counters.retried("commit")),
        relay=relay,
        clock=clock,
        counters=counters,
        buffer=buffer,
        retry=RetryPolicy(buffer, stop, s.pipeline, counters, progress.report_if_due, clock, progress.blocked),
        progress=progress,
        executor=ThreadPoolExecutor(max_workers=s.pipeline.batches_in_flight, thread_name_prefix="store"),
        tracing=runtime.tracing,
    )
    limits = Limits(
        topic=k.orders_topic,
        batch_size=options.batch_size,
        max_items=s.pipeline.max_items,
        batches_in_flight=s.pipeline.batches_in_flight,
        max_wait_seconds=s.pipeline.max_wait_ms / 1000,
        incremental=k.incremental_rebalance,
    )
    if options.metrics_port is not None:
        counters.metrics.serve(s.pipeline.metrics_host, options.metrics_port + options.worker_id)
    return ConsumeWorker(ports, limits, stop)
