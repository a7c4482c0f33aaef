"""Falcon resources. Each gets its collaborators in ``__init__``; the OpenAPI block is in the docstrings."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from ordersctl.adapters.order_store import OrderStore, OrderSummary
from ordersctl.adapters.postgres import translated
from ordersctl.api.cache import OrderCache
from ordersctl.api.metrics import MULTIPROC_ENV, ApiMetrics
from ordersctl.config import PostgresSettings

Connect = Callable[..., AbstractContextManager[Any]]
_UID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_LIMIT = 100


def _json(resp: falcon.Response, body: object, status: str = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(body, separators=(",", ":")).encode()


class OrderResource:
    def __init__(self, cache: OrderCache, metrics: ApiMetrics) -> None:
        self._cache = cache
        self._hits = {layer: metrics.cache_hits.labels(layer) for layer in ("memory", "redis", "db")}

    def on_get(self, req: falcon.Request, resp: falcon.Response, order_uid: str) -> None:
        """One order, in exactly the message format.
        ---
        get:
          summary: Get an order by order_uid
          operationId: getOrder
          tags: [orders]
          security: [{bearer: []}, {}]
          parameters:
            - {name: order_uid, in: path, required: true, schema: {type: string}}
          responses:
            200:
              description: The order; header X-Cache says where it came from (memory, redis or db).
              headers:
                X-Cache: {schema: {type: string, enum: [memory, redis, db]}}
              content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}
            400: {$ref: "#/components/responses/BadRequest"}
            401: {$ref: "#/components/responses/Unauthorized"}
            404: {$ref: "#/components/responses/NotFound"}
            503: {$ref: "#/components/responses/Unavailable"}
        """
        if not _UID.match(order_uid):
            raise falcon.HTTPBadRequest(
                title="invalid order_uid", description="order_uid is 1 to 64 characters of A-Z, a-z, 0-9, _ and -"
            )
        value, layer = self._cache.get(order_uid)
        self._hits[layer].inc()
        if value is None:
            raise falcon.HTTPNotFound(title="order not found", description=f"no order with order_uid {order_uid}")
        resp.content_type = falcon.MEDIA_JSON
        resp.data = value
        resp.set_header("X-Cache", layer)


def encode_cursor(summary: OrderSummary) -> str:
    raw = f"{summary.date_created.isoformat()}|{summary.order_uid}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, uid = raw.split("|", 1)
        when = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise falcon.HTTPBadRequest(title="invalid cursor", description="before must be a `next` value") from exc
    if when.tzinfo is None or not _UID.match(uid):
        raise falcon.HTTPBadRequest(title="invalid cursor", description="before must be a `next` value")
    return when, uid


class OrderListResource:
    def __init__(self, connect: Connect, pg: PostgresSettings) -> None:
        self._connect = connect
        self._pg = pg
        self._store = OrderStore()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Most recent orders first, keyset-paginated.
        ---
        get:
          summary: List recent orders
          operationId: listOrders
          tags: [orders]
          security: [{bearer: []}, {}]
          parameters:
            - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100, default: 20}}
            - {name: before, in: query, description: "`next` of the previous page", schema: {type: string}}
          responses:
            200:
              description: A page of orders
              content: {application/json: {schema: {$ref: "#/components/schemas/OrderPage"}}}
            400: {$ref: "#/components/responses/BadRequest"}
            401: {$ref: "#/components/responses/Unauthorized"}
            503: {$ref: "#/components/responses/Unavailable"}
        """
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=20)
        before_raw = req.get_param("before")
        before = decode_cursor(before_raw) if before_raw else None
        with translated(self._pg), self._connect() as conn:
            page = self._store.recent(conn, limit, before)
        items = [
            {"order_uid": s.order_uid, "track_number": s.track_number,
             "date_created": s.date_created.isoformat().replace("+00:00", "Z"), "amount": s.amount,
             "currency": s.currency, "items": s.items}
            for s in page
        ]  # fmt: skip
        _json(resp, {"items": items, "next": encode_cursor(page[-1]) if len(page) == limit else None})


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
        _json(resp, {"status": "ok"})


class ReadyResource:
    def __init__(self, connect: Connect, cache: OrderCache, warmed: threading.Event) -> None:
        self._connect = connect
        self._cache = cache
        self._warmed = warmed

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """PostgreSQL is required; without Redis the API still serves (degraded).
        ---
        get:
          summary: Readiness
          operationId: ready
          tags: [health]
          responses:
            200:
              description: Ready (status ok, or degraded without Redis)
              content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}
            503:
              description: PostgreSQL is down or the warm-up is not finished
              content: {application/json: {schema: {$ref: "#/components/schemas/Health"}}}
        """
        try:
            with self._connect(timeout=2) as conn:
                conn.execute("SELECT 1")
            postgres = "up"
        except Exception:  # any failure means "not ready"; the reason is in the server log
            postgres = "down"
        redis_up = self._cache.redis.ping()
        body = {"postgres": postgres, "redis": "up" if redis_up else "down"}
        if postgres == "down" or not self._warmed.is_set():
            _json(resp, {"status": "unavailable", **body}, falcon.HTTP_503)
        else:
            _json(resp, {"status": "ok" if redis_up else "degraded", **body})


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
            # Several server processes (serve --processes N): the sum over all of them, from their shared files.
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            resp.data = generate_latest(registry)
        else:
            resp.data = generate_latest(self._registry)


class OpenApiResource:
    def __init__(self, document: bytes) -> None:
        self._document = document

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """This document.
        ---
        get:
          summary: OpenAPI document
          operationId: openapi
          tags: [docs]
          responses:
            200: {description: OpenAPI 3.0 document, content: {application/json: {schema: {type: object}}}}
        """
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self._document


class PageResource:
    def __init__(self, html: bytes) -> None:
        self._html = html

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """A small web page to look orders up.
        ---
        get:
          summary: Web page
          operationId: page
          tags: [docs]
          responses:
            200: {description: HTML page, content: {text/html: {schema: {type: string}}}}
        """
        resp.content_type = falcon.MEDIA_HTML
        resp.data = self._html


class DocsResource:
    """Swagger UI from the swagger-ui-bundle package's local files: no CDN."""

    def __init__(self, html: bytes, assets: dict[str, Path]) -> None:
        self._html = html
        self._assets = assets

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Swagger UI.
        ---
        get:
          summary: Swagger UI
          operationId: docs
          tags: [docs]
          responses:
            200: {description: Swagger UI page, content: {text/html: {schema: {type: string}}}}
        """
        resp.content_type = falcon.MEDIA_HTML
        resp.data = self._html

    def on_get_asset(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """A Swagger UI asset.
        ---
        get:
          summary: Swagger UI asset
          operationId: docsAsset
          tags: [docs]
          parameters:
            - {name: name, in: path, required: true, schema: {type: string}}
          responses:
            200:
              description: The file
              content:
                application/javascript: {schema: {type: string}}
                text/css: {schema: {type: string}}
                image/png: {schema: {type: string, format: binary}}
            404: {$ref: "#/components/responses/NotFound"}
        """
        path = self._assets.get(name)
        if path is None:
            raise falcon.HTTPNotFound(title="not found", description="no such asset")
        resp.content_type = {".js": "application/javascript", ".css": "text/css", ".png": "image/png"}[path.suffix]
        resp.data = path.read_bytes()
        resp.cache_control = ["public", "max-age=86400"]
