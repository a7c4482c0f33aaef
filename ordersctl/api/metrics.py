"""HTTP metrics of the API (one registry per app, so tests can build many apps), named by Prometheus' conventions
as the pipeline's are (pipeline/metrics.py)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from ordersctl.process_metrics import process_registry

# Set (by ``serve --processes N``) to the directory where every server process writes its metric values.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class ApiMetrics:
    """What the API counts, on a registry with the process's build info and process metrics (one process; with
    several, /metrics collects from their shared files instead: api/health.py)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or process_registry()
        self.requests = Counter("ordersctl_http_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)  # fmt: skip
        self.latency = Histogram(
            "ordersctl_http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            ["route"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.lookups = Counter("ordersctl_order_lookups", "Order lookups by the layer that answered them",
                               ["layer"], registry=self.registry)  # fmt: skip
        # labels() looks the child up under a lock on every call; hot paths keep the children instead.
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, code: str, seconds: float) -> None:
        key = (route, method, code)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(*key), self.latency.labels(route))
        children[0].inc()
        children[1].observe(seconds)
