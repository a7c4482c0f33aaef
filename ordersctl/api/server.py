"""Running the API on waitress: one process, or several forked processes sharing one listening socket.

waitress answers in one process, so one interpreter lock caps it at one core; ``--processes N`` forks N
servers that accept on the same socket. Each builds its own clients after the fork (nothing is connected
before it), its own in-process cache and warm-up. Metrics are then written through prometheus_client's
multiprocess mode, so any process's /metrics reports the sum over all of them.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.context import ForkProcess
from types import FrameType
from typing import Any

import waitress
from prometheus_client import values

from ordersctl.api.app import ApiParts, create_app
from ordersctl.api.channel import use_flush_aware_channels
from ordersctl.api.metrics import MULTIPROC_ENV
from ordersctl.cache.warmup import RecentOrders, warm
from ordersctl.errors import OrdersError
from ordersctl.logs import EarlyRateLimitedWarnings
from ordersctl.output import info
from ordersctl.runtime import Runtime
from ordersctl.supervision import ProcessSupervisor

log = logging.getLogger(__name__)
# What a server process gets to close after SIGTERM before it is killed: under the 10 s a container runtime
# gives the whole of serve.
GRACE_SECONDS = 9.0


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before any fork so that every process accepts on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        raise OrdersError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(
    runtime: Runtime,
    sock: socket.socket,
    *,
    processes: int = 1,
    extra_routes: list[tuple[str, object]] | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT; with ``processes`` > 1 this process supervises forked servers."""
    if processes <= 1:
        _serve_one(runtime, sock, extra_routes)
        return
    metrics_dir = tempfile.mkdtemp(prefix="ordersctl-metrics-")
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        _supervise(lambda: _serve_one(runtime, sock, extra_routes, multiprocess=True), processes)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        os.environ.pop(MULTIPROC_ENV, None)


def _serve_one(
    runtime: Runtime, sock: socket.socket, extra_routes: list[tuple[str, object]] | None, multiprocess: bool = False
) -> None:
    if multiprocess:
        # prometheus_client picks how values are stored when it is imported; switch it to the shared files.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    s = runtime.settings.api
    parts = create_app(runtime, extra_routes=extra_routes)
    socket_map: dict[int, Any] = {}
    server = waitress.create_server(parts.app, socket_map, sockets=[sock], threads=s.threads, ident="ordersctl")
    use_flush_aware_channels(socket_map)
    # waitress warns of its queue depth for each request queued behind busy threads; rate-limited (logs.py),
    # and with that decided before a record is made, since it is made on the loop every request waits on.
    server.task_dispatcher.queue_logger = EarlyRateLimitedWarnings(logging.getLogger("waitress.queue"))
    threading.Thread(target=_warm_up, args=(runtime, parts, s.warm_limit), name="warm-up", daemon=True).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _warm_up(rt: Runtime, parts: ApiParts, limit: int) -> None:
    try:
        if limit:
            recent = RecentOrders(rt.pg_connection, rt.store.reads, limit)
            count, seconds = warm(parts.cache.redis, recent, memory=parts.cache.memory)
            info(f"serve: warmed {count} orders into memory and Redis in {seconds:.2f}s (pid {os.getpid()})")
    except OrdersError as exc:
        # PostgreSQL down at start: serve anyway (ready says 503 while it is down), cold caches.
        log.warning("warm-up skipped", extra={"error": str(exc)})
    finally:
        parts.warmed.set()


def _supervise(body: Callable[[], None], processes: int) -> None:
    """Fork ``processes`` servers, restart one that ends, forward SIGTERM/SIGINT and wait for them."""
    # Forked, not spawned: every server inherits the one listening socket, bound before the fork.
    ctx = mp.get_context("fork")

    def make_child(slot: int) -> ForkProcess:
        return ctx.Process(target=_server_process, args=(body,), name=f"ordersctl-serve-{slot}")

    ProcessSupervisor(make_child, processes, grace=GRACE_SECONDS, restart_clean_exit=True, role="server process").run()


def _server_process(body: Callable[[], None]) -> None:
    """Body of a forked server process; it ends with ``os._exit``, so nothing of the parent's runs on exit."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into one SIGTERM each
        # Until the server installs its own handler, SIGTERM ends it (the parent's handler came with the fork).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        body()
    except BaseException as exc:
        log.exception("server process failed", extra={"error": str(exc)})
        code = 1
    finally:
        os._exit(code)
