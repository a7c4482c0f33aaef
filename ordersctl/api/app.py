"""``create_app(runtime)``: the Falcon app. Collaborators come from the runtime; nothing connects here."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import falcon
from swagger_ui_bundle import swagger_ui_path

from ordersctl.api import failures, health
from ordersctl.api.dashboard import resources as dashboard
from ordersctl.api.metrics import ApiMetrics
from ordersctl.api.middleware import AccessLog, BearerAuth
from ordersctl.api.openapi import add_models, add_route, new_spec
from ordersctl.api.orders import resources
from ordersctl.api.orders.cursor import CURSOR_MAX_LENGTH, CURSOR_PATTERN
from ordersctl.api.orders.schemas import ErrorBody, Health, OrderPage
from ordersctl.cache.memory import MemoryLRU
from ordersctl.cache.read_through import OrderCache
from ordersctl.cache.redis_connections import ThreadConnections
from ordersctl.cache.redis_layer import RedisOrderCache
from ordersctl.domain.order import ORDER_UID_MAX_LENGTH, ORDER_UID_PATTERN, Order
from ordersctl.errors import TransientError
from ordersctl.masking import mask_text
from ordersctl.runtime import Runtime

STATIC = Path(__file__).parent / "static"


@dataclass
class ApiParts:
    """What ``serve`` and the tests reach into: the cache (warm-up), the ready flag and the draining flag."""

    app: falcon.App[Any, Any]
    cache: OrderCache
    metrics: ApiMetrics
    warmed: threading.Event = field(default_factory=threading.Event)
    draining: threading.Event = field(default_factory=threading.Event)  # set on SIGTERM: readiness fails


def _error_serializer(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    resp.content_type = falcon.MEDIA_JSON
    body = json.dumps({"error": exc.title or "error", "detail": exc.description or ""})
    resp.data = mask_text(body).encode()  # a detail never quotes a secret value, whatever raised it


def _components(spec: object, assets: list[str]) -> None:
    add_models(spec, Order, ErrorBody, OrderPage, Health)  # type: ignore[arg-type]
    for name, description in (("BadRequest", "Invalid request"), ("Unauthorized", "Missing or wrong bearer token"),
                              ("NotFound", "No such resource"), ("Unavailable", "A dependency is down")):  # fmt: skip
        spec.components.response(  # type: ignore[attr-defined]
            name,
            {"description": description,
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}},
        )  # fmt: skip
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})  # type: ignore[attr-defined]
    # Built from the constants the responders check, so the document says exactly what they accept.
    uid = {"type": "string", "minLength": 1, "maxLength": ORDER_UID_MAX_LENGTH, "pattern": ORDER_UID_PATTERN}
    cursor = {"type": "string", "maxLength": CURSOR_MAX_LENGTH, "pattern": CURSOR_PATTERN}
    before = "`next` of the previous page (date_created in microseconds since 1970 UTC, a dot, order_uid)"
    for name, location, parameter in (
        ("OrderUid", "path", {"name": "order_uid", "required": True, "schema": uid}),
        ("Cursor", "query", {"name": "before", "description": before, "schema": cursor}),
        ("AssetName", "path", {"name": "name", "required": True, "schema": {"type": "string", "enum": assets}}),
    ):  # fmt: skip
        spec.components.parameter(name, location, parameter)  # type: ignore[attr-defined]


def create_app(runtime: Runtime, *, extra_routes: list[tuple[str, object]] | None = None) -> ApiParts:
    """The API wired to ``runtime``'s clients (built lazily on first request)."""
    s = runtime.settings
    metrics = ApiMetrics()
    reads = runtime.store.reads

    # Order reads go to postgres.read_dsn when there is one (Runtime.pg_read_connection); readiness stays on the DSN.
    connection = partial(runtime.pg_read_connection, timeout=s.api.db_wait_seconds)

    def load(uid: str) -> bytes | None:
        with failures.postgres(), connection() as conn:
            order = reads.get(conn, uid)
        return order.model_dump_json().encode() if order else None

    cache = OrderCache(
        MemoryLRU(s.api.memory_cache_size, s.api.memory_cache_ttl_seconds),
        # Connects on first command; no client at all without Redis (redis.url empty).
        RedisOrderCache(ThreadConnections(runtime.redis) if s.redis.enabled else None, s.redis.ttl_seconds),
        load,
    )
    token = s.api.token.get_secret_value() if s.api.token else None
    # A span per request first (its response hook runs last), when tracing is on; none when off.
    middleware: list[Any] = [*runtime.tracing.middleware(), AccessLog(metrics), BearerAuth(token)]
    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = True
    # "?before=" is a cursor that is not one (400), not "no cursor": the document declares what a cursor is.
    app.req_options.keep_blank_qs_values = True
    app.set_error_serializer(_error_serializer)
    app.add_error_handler(TransientError, failures.UnavailableHandler())
    parts = ApiParts(app, cache, metrics)

    assets = {p.name: p for p in Path(swagger_ui_path).iterdir() if p.suffix in (".js", ".css", ".png")}
    assets["init.js"] = STATIC / "swagger-init.js"
    docs = resources.DocsResource(_swagger_html(), assets)
    spec = new_spec()
    _components(spec, sorted(assets))
    dashboard.add_components(spec)
    ready = health.ReadyResource(runtime.pg_connection, cache, parts.warmed, parts.draining)
    routes: list[tuple[str, object, str | None]] = [
        ("/", resources.PageResource((STATIC / "index.html").read_bytes()), None),
        ("/orders", resources.OrderListResource(connection, reads), None),
        ("/orders/{order_uid}", resources.OrderResource(cache, metrics), None),
        ("/health/live", health.LiveResource(), None),
        ("/health/ready", ready, None),
        ("/metrics", health.MetricsResource(metrics.registry), None),
        ("/docs", docs, None),
        ("/docs/static/{name}", docs, "asset"),
        *dashboard.routes(runtime),
    ]
    routes += [(uri, res, None) for uri, res in extra_routes or []]
    for uri, resource, suffix in routes:
        if suffix:
            app.add_route(uri, resource, suffix=suffix)
        else:
            app.add_route(uri, resource)
        add_route(spec, uri, resource, suffix)
    # The document describes itself too: its route is read from the class before the instance holds the result.
    add_route(spec, "/openapi.json", resources.OpenApiResource)
    openapi = resources.OpenApiResource(json.dumps(spec.to_dict()).encode())
    app.add_route("/openapi.json", openapi)
    return parts


def _swagger_html() -> bytes:
    return b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ordersctl API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-ui-standalone-preset.js"></script>
<script src="/docs/static/init.js"></script>
</body></html>"""
