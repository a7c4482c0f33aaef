"""``ordersctl serve``: the HTTP API on waitress."""

from __future__ import annotations

from typing import Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.output import info


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port to listen on.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, max=256, help="Worker threads per process.")] = None,
    processes: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes on the one port (one per core uses the machine)."),
    ] = None,
    warm_limit: Annotated[int | None, typer.Option(min=0, help="Orders to load into the caches at start.")] = None,
) -> None:
    """Serve the API: GET /orders/{order_uid}, /orders, /health/*, /metrics, /openapi.json, /docs and /.

    /health/ready answers 503 until the warm-up is done. Set ORDERS_API__TOKEN to require a bearer token
    on /orders*. With --processes N, N servers share the port; /metrics sums over them. PostgreSQL credentials
    it refuses stop serve (exit 2): at once at start, within 10 s once running (a changed password);
    PostgreSQL down does not.

    SIGTERM drains: /health/ready answers 503 at once, every request is still answered (responses then close
    their connection) for api.drain_seconds (ORDERS_API__DRAIN_SECONDS, 10; 0: no wait), then serve stops
    accepting, finishes what is in flight (at most 5 s) and exits 0. Ctrl-C stops one process at once;
    with --processes N it drains as SIGTERM does.

    Example: ordersctl serve --port 8080 --processes 2 --warm-limit 1000
    """
    from ordersctl.access_watch import AccessWatch
    from ordersctl.adapters.postgres import check_access
    from ordersctl.api.serving import server  # the web stack loads only for this command

    app = app_context(ctx)
    app.override("api", host=host, port=port, threads=threads, processes=processes, warm_limit=warm_limit)
    rt = app.runtime
    s = rt.settings.api
    check_access(rt.settings.postgres)  # wrong credentials: exit 2 and one line, not a server answering 503 for ever
    sock = server.listen(s.host, s.port)
    base = f"http://{s.host}:{sock.getsockname()[1]}"
    info(f"serve: listening on {base} with {s.processes} process(es)  "
         f"(page {base}/, Swagger UI {base}/docs, ready {base}/health/ready)")  # fmt: skip
    watch = AccessWatch(lambda: check_access(rt.settings.postgres))  # refused later (a changed password): stop
    watch.start()
    try:
        server.serve(rt, sock, processes=s.processes)
    finally:
        watch.stop()
        sock.close()
        info("serve: stopped")
    if watch.error is not None:
        raise watch.error
