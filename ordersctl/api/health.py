"""The operators' endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging
import os
import threading

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from ordersctl.api import failures
from ordersctl.api.metrics import MULTIPROC_ENV
from ordersctl.api.orders.resources import Connect, write_json
from ordersctl.cache.read_through import OrderCache
from ordersctl.logs import RateLimit
from ordersctl.process_metrics import BuildInfo, ServerProcesses

log = logging.getLogger(__name__)
# Probes ask every few seconds; during an outage one line with the traceback now and then says it all.
READY_LOG_EVERY_SECONDS = 30.0


class LiveResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The process answers.
        ---
        get:
          summary: Liveness
          operationId: live
          tags: [health]
          responses:
            200: {description: Alive, content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}}
        """
        write_json(resp, {"status": "ok"})


class ReadyResource:
    def __init__(
        self,
        connect: Connect,
        cache: OrderCache,
        warmed: threading.Event,
        draining: threading.Event | None = None,
        log_every: float = READY_LOG_EVERY_SECONDS,
    ) -> None:
        self._connect = connect
        self._cache = cache
        self._warmed = warmed
        self._draining = draining or threading.Event()
        self._log_limit = RateLimit(log_every)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """PostgreSQL is required; with Redis down the API still serves (degraded); Redis may be off (disabled).
        After SIGTERM: 503 "draining", at once and without asking anything, while the server goes on answering
        until the platform stops routing.
        ---
        get:
          summary: Readiness
          operationId: ready
          tags: [health]
          responses:
            200:
              description: Ready (status ok, or degraded with Redis down; redis is "disabled" when it is off)
              content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}
            503:
              description: PostgreSQL is down, the warm-up is not finished, or the server is draining (SIGTERM)
              content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}
        """
        if self._draining.is_set():
            write_json(resp, {"status": "draining"}, falcon.HTTP_503)
            return
        try:
            # Translated so that the log says which server did not answer, not only that the pool timed out.
            with failures.postgres(), self._connect(timeout=2) as conn:
                conn.execute("SELECT 1")
            postgres = "up"
        except Exception:  # any failure means "not ready"; the reason goes to the log
            postgres = "down"
            suppressed = self._log_limit.allow(failures.POSTGRES)
            if suppressed is not None:
                extra = {"dependency": failures.POSTGRES, "suppressed": suppressed}
                log.warning("not ready", exc_info=True, extra=extra)
        # The Redis layer logs its own failures (once per back-off) and turns them into False.
        redis = "disabled" if not self._cache.redis.enabled else "up" if self._cache.redis.ping() else "down"
        body = {"postgres": postgres, "redis": redis}
        if postgres == "down" or not self._warmed.is_set():
            write_json(resp, {"status": "unavailable", **body}, falcon.HTTP_503)
        else:
            write_json(resp, {"status": "degraded" if redis == "down" else "ok", **body})


class MetricsResource:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Prometheus metrics.
        ---
        get:
          summary: Prometheus metrics
          operationId: metrics
          tags: [health]
          responses:
            200: {description: Prometheus text format, content: {text/plain: {schema: {type: string}}}}
        """
        resp.content_type = CONTENT_TYPE_LATEST
        if os.environ.get(MULTIPROC_ENV):
            # Several server processes (serve --processes N): the sum over all of them, from their shared files,
            # and the process metrics of each (the multiprocess mode has none).
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(BuildInfo())
            registry.register(ServerProcesses())
            resp.data = generate_latest(registry)
        else:
            resp.data = generate_latest(self._registry)
