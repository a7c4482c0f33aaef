"""``ordersctl serve``: the HTTP API on waitress."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Annotated

import typer
import waitress

from ordersctl.api.app import ApiParts, create_app
from ordersctl.api.warmup import warm
from ordersctl.cli.context import app_context
from ordersctl.errors import OrdersError
from ordersctl.output import info
from ordersctl.runtime import Runtime

log = logging.getLogger(__name__)


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port to listen on.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, max=256, help="Worker threads.")] = None,
    warm_limit: Annotated[int | None, typer.Option(min=0, help="Orders to load into the caches at start.")] = None,
) -> None:
    """Serve the API: GET /orders/{order_uid}, /orders, /health/*, /metrics, /openapi.json, /docs and /.

    /health/ready answers 503 until the warm-up is done. Set ORDERS_API__TOKEN to require a bearer token
    on /orders*.

    Example: ordersctl serve --port 8080 --warm-limit 1000
    """
    app = app_context(ctx)
    app.override("api", host=host, port=port, threads=threads, warm_limit=warm_limit)
    rt = app.runtime
    s = rt.settings.api
    parts = create_app(rt)
    server = waitress.create_server(parts.app, host=s.host, port=s.port, threads=s.threads, ident="ordersctl")
    base = f"http://{s.host}:{server.effective_port}"
    info(f"serve: listening on {base}  (page {base}/, Swagger UI {base}/docs, ready {base}/health/ready)")
    threading.Thread(target=_warm_up, args=(rt, parts, s.warm_limit), name="warm-up", daemon=True).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        info("serve: stopped")
    finally:
        server.close()


def _warm_up(rt: Runtime, parts: ApiParts, limit: int) -> None:
    try:
        if limit:
            count, seconds = warm(rt, parts.cache, limit)
            info(f"serve: warmed {count} orders into memory and Redis in {seconds:.2f}s")
    except OrdersError as exc:
        # PostgreSQL down at start: serve anyway (ready says 503 while it is down), cold caches.
        log.warning("warm-up skipped", extra={"error": str(exc)})
    finally:
        parts.warmed.set()
