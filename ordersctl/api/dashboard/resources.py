"""The pipeline view of the web page: ``/pipeline/status``, ``/pipeline/dead-letters`` and the view's script
and style sheet. ``create_app`` registers ``routes(...)`` and ``add_components(spec)``; the reads themselves
are the observe package's, through ``pipeline_reads``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import falcon
from apispec import APISpec

from ordersctl.api.dashboard.reads import PipelineReads
from ordersctl.api.dashboard.schemas import DeadLettersOut, PipelineStatusOut
from ordersctl.api.openapi import add_models

if TYPE_CHECKING:
    from ordersctl.runtime import Runtime

STATIC = Path(__file__).parent.parent / "static"  # the page's files, beside the app
# The view's own files; the page itself is index.html, served at /.
ASSETS = {"pipeline.js": "text/javascript", "pipeline.css": "text/css"}


def _send(resp: falcon.Response, body: bytes) -> None:
    resp.content_type = falcon.MEDIA_JSON
    resp.data = body
    # Kept for a moment on the server, never by the browser: each refresh of the page asks again.
    resp.cache_control = ["no-store"]


class PipelineStatusResource:
    def __init__(self, reads: PipelineReads) -> None:
        self._reads = reads

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Is the pipeline healthy: what `ordersctl status` says, read at most every 2 s.
        ---
        get:
          summary: Pipeline status
          description: >-
            Lag per partition of the orders topic, the consumer group's state, dead letters of the last hour by
            reason, the outbox backlog, PostgreSQL's statistics of the orders table and each service's round
            trip. Read from the sources of truth without joining the consumer group, and shared by the requests
            of the same 2 s. A service that is down is shown down (up false) and the sections it holds are null
            and named in unread: still a 200.
          operationId: pipelineStatus
          tags: [pipeline]
          security: [{bearer: []}, {}]
          responses:
            200:
              description: The status
              content: {application/json: {schema: {$ref: "#/components/schemas/PipelineStatusOut"}}}
            401: {$ref: "#/components/responses/Unauthorized"}
        """
        _send(resp, self._reads.status())


class DeadLettersResource:
    def __init__(self, reads: PipelineReads) -> None:
        self._reads = reads

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The 20 most recent dead letters: time, reason, partition and offset, order_uid. Never a payload.
        ---
        get:
          summary: Latest dead letters
          description: >-
            Newest first, read at most every 2 s. With Kafka down, kafka is "down" and items null: still a 200.
          operationId: pipelineDeadLetters
          tags: [pipeline]
          security: [{bearer: []}, {}]
          responses:
            200:
              description: The latest dead letters
              content: {application/json: {schema: {$ref: "#/components/schemas/DeadLettersOut"}}}
            401: {$ref: "#/components/responses/Unauthorized"}
        """
        _send(resp, self._reads.dead_letters())


class ViewAssetResource:
    """The pipeline view's script and style sheet, from local files (no CDN)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """A file of the web page.
        ---
        get:
          summary: Web page asset
          operationId: pageAsset
          tags: [docs]
          parameters:
            - PageAssetName
          responses:
            200:
              description: The file
              content:
                text/javascript: {schema: {type: string}}
                text/css: {schema: {type: string}}
            404: {$ref: "#/components/responses/NotFound"}
        """
        media = ASSETS.get(name)
        if media is None:
            raise falcon.HTTPNotFound(title="not found", description="no such asset")
        resp.content_type = media
        resp.data = (STATIC / name).read_bytes()
        # They change with ordersctl, and carry no version in their name: the browser asks again each load.
        resp.cache_control = ["no-cache"]


def routes(runtime: Runtime, reads: PipelineReads | None = None) -> list[tuple[str, object, str | None]]:
    """The view's routes; its reads connect on the first request (``PipelineReads.of``)."""
    reads = reads or PipelineReads.of(runtime)
    return [
        ("/pipeline/status", PipelineStatusResource(reads), None),
        ("/pipeline/dead-letters", DeadLettersResource(reads), None),
        ("/static/{name}", ViewAssetResource(), None),
    ]


def add_components(spec: APISpec) -> None:
    add_models(spec, PipelineStatusOut, DeadLettersOut)
    name = {"name": "name", "required": True, "schema": {"type": "string", "enum": sorted(ASSETS)}}
    spec.components.parameter("PageAssetName", "path", name)
