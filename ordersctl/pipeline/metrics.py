"""Prometheus metrics of a consume worker (each worker process serves its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class PipelineMetrics:
    """Counters the worker updates; ``serve(host, port)`` exposes them over HTTP."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter("orders_consumed", "Messages read from the orders topic", registry=r)
        self.stored = Counter("orders_stored", "New orders stored", registry=r)
        self.duplicates = Counter("orders_duplicate", "Redelivered orders with identical content", registry=r)
        self.dlq = Counter("orders_dlq", "Messages sent to the dead-letter topic", ["reason"], registry=r)
        self.retries = Counter("pipeline_retries", "Retries after a transient failure", ["operation"], registry=r)
        self.events = Counter("events_published", "Order-saved events published", registry=r)
        self.batch_size = Histogram(
            "batch_size", "Messages per batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000), registry=r
        )
        self.batch_seconds = Histogram(
            "batch_seconds", "Time to handle a batch (decode, store, DLQ, commit)", registry=r
        )
        self.lag = Gauge("consumer_lag", "Messages not yet committed", ["topic", "partition"], registry=r)

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve on ``host:port`` (``pipeline.metrics_host``; 0.0.0.0 in a container); returns the bound address."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound_host, bound_port = server.server_address[:2]
        return str(bound_host), int(bound_port)
