"""One sink for what a worker counts: each event is recorded once, and feeds both the stats line (summed by the
supervisor across processes) and the worker's Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterable

from ordersctl.pipeline.metrics import PipelineMetrics
from ordersctl.pipeline.stats import WorkerStats


class PipelineCounters:
    def __init__(self, stats: WorkerStats | None = None, metrics: PipelineMetrics | None = None) -> None:
        self.stats = stats or WorkerStats()
        self.metrics = metrics or PipelineMetrics()

    def batch_completed(self, records: int, stored: int, duplicates: int, reasons: list[str], seconds: float) -> None:
        """Counted once the batch is complete, so that consumed = stored + duplicates + dead-lettered."""
        s, m = self.stats, self.metrics
        s.consumed += records
        m.consumed.inc(records)
        m.batch_size.observe(records)
        s.stored += stored
        m.stored.inc(stored)
        s.duplicates += duplicates
        m.duplicates.inc(duplicates)
        for reason in reasons:
            s.dlq[reason] += 1
            m.dlq.labels(reason).inc()
        m.batch_seconds.observe(seconds)

    def retried(self, operation: str) -> None:
        self.stats.retries += 1
        self.metrics.retries.labels(operation).inc()

    def events_published(self, count: int) -> None:
        self.stats.events += count
        self.metrics.events.inc(count)

    def partition_lag(self, topic: str, partition: int, lag: int) -> None:
        self.metrics.lag.labels(topic, str(partition)).set(lag)

    def partitions_gone(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Partitions revoked or lost: their lag series goes (their next owner reports it), rather than staying
        behind with its last value."""
        for topic, partition in partitions:
            self.metrics.lag.remove(topic, str(partition))
