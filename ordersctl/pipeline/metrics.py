"""Prometheus metrics of a consume worker (each worker process serves its own registry, on its own port).

Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/): the ``ordersctl_`` prefix,
base units (``_seconds``, and what is counted: ``_messages``), counters ending in ``_total`` (prometheus_client
appends it). The README's metric table lists every name; tests/unit/test_metric_names.py holds them to both."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ordersctl.process_metrics import process_registry


class PipelineMetrics:
    """Counters the worker updates; ``serve(host, port)`` exposes them over HTTP, with the worker's build info and
    process metrics."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or process_registry()
        r = self.registry
        self.consumed = Counter("ordersctl_orders_consumed", "Messages read from the orders topic and handled",
                                registry=r)  # fmt: skip
        self.stored = Counter("ordersctl_orders_stored", "New orders stored", registry=r)
        self.duplicates = Counter(
            "ordersctl_orders_duplicate", "Redelivered orders with identical content (stored before)", registry=r
        )
        self.dlq = Counter("ordersctl_orders_dead_lettered", "Messages sent to the dead-letter topic, by reason",
                           ["reason"], registry=r)  # fmt: skip
        self.retries = Counter("ordersctl_pipeline_retries", "Retries after a transient failure, by operation",
                               ["operation"], registry=r)  # fmt: skip
        self.events = Counter("ordersctl_events_published", "Order-saved events published", registry=r)
        self.batch_size = Histogram(
            "ordersctl_batch_size_messages", "Messages per batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000), registry=r,
        )  # fmt: skip
        self.batch_seconds = Histogram(
            "ordersctl_batch_duration_seconds", "Time to handle a batch (decode, store, DLQ, commit)", registry=r
        )
        self.lag = Gauge(
            "ordersctl_consumer_lag_messages",
            "Messages of a partition this worker holds not yet committed by the group (end offset - committed)",
            ["topic", "partition"],
            registry=r,
        )

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Serve on ``host:port`` (``pipeline.metrics_host``; 0.0.0.0 in a container); returns the bound address."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        bound_host, bound_port = server.server_address[:2]
        return str(bound_host), int(bound_port)
