"""Running the API on waitress: one process, or several forked processes sharing one listening socket.

waitress answers in one process, so one interpreter lock caps it at one core; ``--processes N`` forks N
servers that accept on the same socket. Each builds its own clients after the fork (nothing is connected
before it), its own in-process cache and warm-up. Metrics are then written through prometheus_client's
multiprocess mode, so any process's /metrics reports the sum over all of them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from types import FrameType

import waitress
from prometheus_client import values

from ordersctl.api.app import ApiParts, create_app
from ordersctl.api.metrics import MULTIPROC_ENV
from ordersctl.api.warmup import warm
from ordersctl.errors import OrdersError
from ordersctl.output import info
from ordersctl.runtime import Runtime

log = logging.getLogger(__name__)


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
    server = waitress.create_server(parts.app, sockets=[sock], threads=s.threads, ident="ordersctl")
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
            count, seconds = warm(rt, parts.cache, limit)
            info(f"serve: warmed {count} orders into memory and Redis in {seconds:.2f}s (pid {os.getpid()})")
    except OrdersError as exc:
        # PostgreSQL down at start: serve anyway (ready says 503 while it is down), cold caches.
        log.warning("warm-up skipped", extra={"error": str(exc)})
    finally:
        parts.warmed.set()


def _supervise(body: Callable[[], None], processes: int) -> None:
    """Fork ``processes`` servers, restart one that dies, forward SIGTERM/SIGINT and wait for them."""
    stopping = False
    children: set[int] = set()

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into one SIGTERM each
                body()
            except BaseException as exc:
                log.exception("server process failed", extra={"error": str(exc)})
                code = 1
            finally:
                os._exit(code)
        children.add(pid)

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for _ in range(processes):
        spawn()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        children.discard(pid)
        if not stopping:
            log.warning("server process exited; starting another", extra={"pid": pid, "status": status})
            time.sleep(0.5)  # a process that dies at once must not turn into a fork loop
            if not stopping:
                spawn()
