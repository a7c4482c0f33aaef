"""Falcon resources. Each gets its collaborators in ``__init__``; the OpenAPI block is in the docstrings.

Parameters whose constraints come from code (order_uid, cursor, asset names) are named components/parameters,
built in ``app._components`` from the same constants the responders check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import falcon

from ordersctl.adapters.order_store.reads import OrderReads
from ordersctl.api import failures
from ordersctl.api.metrics import ApiMetrics
from ordersctl.api.orders.cursor import decode_cursor, encode_cursor
from ordersctl.cache.read_through import OrderCache
from ordersctl.domain.order import ORDER_UID_MAX_LENGTH, is_order_uid
from ordersctl.domain.times import utc_z

Connect = Callable[..., AbstractContextManager[Any]]
MAX_LIMIT = 100


def write_json(resp: falcon.Response, body: object, status: str = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json.dumps(body, separators=(",", ":")).encode()


class OrderResource:
    def __init__(self, cache: OrderCache, metrics: ApiMetrics) -> None:
        self._cache = cache
        self._hits = {layer: metrics.lookups.labels(layer) for layer in ("memory", "redis", "db")}

    def on_get(self, req: falcon.Request, resp: falcon.Response, order_uid: str) -> None:
        """One order, in exactly the message format.
        ---
        get:
          summary: Get an order by order_uid
          operationId: getOrder
          tags: [orders]
          security: [{bearer: []}, {}]
          parameters:
            - OrderUid
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
        if not is_order_uid(order_uid):
            raise falcon.HTTPBadRequest(
                title="invalid order_uid",
                description=f"order_uid is 1 to {ORDER_UID_MAX_LENGTH} characters of A-Z, a-z, 0-9, _ and -",
            )
        value, layer = self._cache.get(order_uid)
        self._hits[layer].inc()
        if value is None:
            raise falcon.HTTPNotFound(title="order not found", description=f"no order with order_uid {order_uid}")
        resp.content_type = falcon.MEDIA_JSON
        resp.data = value
        resp.set_header("X-Cache", layer)


class OrderListResource:
    def __init__(self, connect: Connect, reads: OrderReads) -> None:
        self._connect = connect
        self._reads = reads

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
            - Cursor
          responses:
            200:
              description: A page of orders
              content: {application/json: {schema: {$ref: "#/components/schemas/OrderPage"}}}
              links:
                GetFirstOrder:
                  description: The first order of the page
                  operationId: getOrder
                  parameters: {order_uid: "$response.body#/items/0/order_uid"}
                NextPage:
                  description: The page after this one
                  operationId: listOrders
                  parameters: {before: "$response.body#/next"}
            400: {$ref: "#/components/responses/BadRequest"}
            401: {$ref: "#/components/responses/Unauthorized"}
            503: {$ref: "#/components/responses/Unavailable"}
        """
        limit = req.get_param_as_int("limit", min_value=1, max_value=MAX_LIMIT, default=20)
        before_raw = req.get_param("before")
        before = decode_cursor(before_raw) if before_raw is not None else None
        with failures.postgres(), self._connect() as conn:
            page = self._reads.recent(conn, limit, before)
        items = [
            {"order_uid": s.order_uid, "track_number": s.track_number,
             "date_created": utc_z(s.date_created), "amount": s.amount,
             "currency": s.currency, "items": s.items}
            for s in page
        ]  # fmt: skip
        write_json(resp, {"items": items, "next": encode_cursor(page[-1]) if len(page) == limit else None})


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
            - AssetName
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
