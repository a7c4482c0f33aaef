"""Bearer-token auth for /orders* and /pipeline*, access log and request metrics.

Access logs hold route, method, status and latency: never bodies, query strings or headers (orders carry
personal data, headers carry tokens).
"""

from __future__ import annotations

import hmac
import logging
import time

import falcon

from ordersctl.api.metrics import ApiMetrics

log = logging.getLogger("ordersctl.api.access")
# Orders carry personal data; the pipeline's figures describe the business and its systems.
PROTECTED = ("/orders", "/pipeline")


class BearerAuth:
    """When a token is configured, /orders* and /pipeline* need ``Authorization: Bearer <token>``."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._token is None or not req.path.startswith(PROTECTED):
            return
        header = req.get_header("Authorization") or ""
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self._token):
            raise falcon.HTTPUnauthorized(
                title="unauthorized",
                description="a valid bearer token is required",
                challenges=['Bearer realm="ordersctl"'],
            )


class AccessLog:
    def __init__(self, metrics: ApiMetrics) -> None:
        self._metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        took = time.perf_counter() - getattr(req.context, "started", time.perf_counter())
        route = req.uri_template or "unmatched"
        status = resp.status if isinstance(resp.status, str) else str(resp.status)
        code = status.split(" ", 1)[0]
        self._metrics.observe(route, req.method, code, took)
        if log.isEnabledFor(logging.INFO):
            log.info("request", extra={"route": route, "method": req.method, "status": int(code),
                                       "ms": round(took * 1000, 2)})  # fmt: skip
