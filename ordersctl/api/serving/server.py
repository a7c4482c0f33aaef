"""Running the API on waitress: one process, or several forked processes sharing one listening socket.

waitress answers in one process, so one interpreter lock caps it at one core; ``--processes N`` forks N
servers that accept on the same socket. Each builds its own clients after the fork (nothing is connected
before it), its own in-process cache and warm-up. Metrics are then written through prometheus_client's
multiprocess mode, so any process's /metrics reports the sum over all of them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.context import ForkProcess
from types import FrameType
from typing import Any

import waitress
from prometheus_client import values
from waitress import wasyncore
from waitress.channel import HTTPChannel

from ordersctl.api.app import ApiParts, create_app
from ordersctl.api.metrics import MULTIPROC_ENV
from ordersctl.api.serving.channel import use_flush_aware_channels
from ordersctl.cache.warmup import RecentOrders, warm
from ordersctl.errors import OrdersError
from ordersctl.logs import EarlyRateLimitedWarnings, identify, identity
from ordersctl.output import info
from ordersctl.runtime import Runtime
from ordersctl.supervision import ProcessSupervisor

log = logging.getLogger(__name__)
# After the drain, what the requests in flight get to finish (a request waits at most api.db_wait_seconds for a
# connection); anything still queued then is cancelled. The platform's grace period must cover
# api.drain_seconds plus this (the Helm chart's terminationGracePeriodSeconds does).
FINISH_SECONDS = 5.0
# Beyond the drain and the finish, before the supervisor of several server processes kills one that is not done.
KILL_MARGIN_SECONDS = 2.0
# The loop's longest wait in select(): how late it notices the end of the drain.
LOOP_TIMEOUT = 0.2


@dataclass
class Drain:
    """SIGTERM's answer: readiness fails at once (``event``), the server goes on answering every request, on
    open connections and new ones, for ``seconds``, so that the platform can stop routing to it; then it stops
    accepting and finishes what is in flight."""

    seconds: float
    event: threading.Event = field(default_factory=threading.Event)
    began: float | None = None

    def begin(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """The signal handler: only flags and a time, the loop does the rest."""
        if self.began is None:
            self.began = time.monotonic()
            self.event.set()

    def remaining(self) -> float | None:
        """Seconds left of the drain; None before SIGTERM."""
        return None if self.began is None else self.began + self.seconds - time.monotonic()


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

        def body() -> None:
            try:
                _serve_one(runtime, sock, extra_routes, multiprocess=True)
            finally:
                runtime.tracing.close()  # the process ends with os._exit: its last spans go out first

        _supervise(body, processes, runtime.settings.api.drain_seconds)
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
    drain = Drain(s.drain_seconds, parts.draining)
    use_flush_aware_channels(socket_map, drain.event)
    # waitress warns of its queue depth for each request queued behind busy threads; rate-limited (logs.py),
    # and with that decided before a record is made, since it is made on the loop every request waits on.
    server.task_dispatcher.queue_logger = EarlyRateLimitedWarnings(logging.getLogger("waitress.queue"))
    threading.Thread(target=_warm_up, args=(runtime, parts, s.warm_limit), name="warm-up", daemon=True).start()

    signal.signal(signal.SIGTERM, drain.begin)
    try:
        run_until_drained(server, socket_map, drain)
    except KeyboardInterrupt:
        pass  # Ctrl-C on a terminal, one process: stop now, without the drain
    finally:
        # Cancels what is still queued (nothing, after a drain that finished in time), then closes every socket.
        server.task_dispatcher.shutdown()
        wasyncore.close_all(socket_map)


def run_until_drained(server: Any, socket_map: dict[int, Any], drain: Drain) -> None:
    """waitress's loop, until SIGTERM and the drain after it; then no new connection is accepted and the loop
    runs until no request is in flight (at most FINISH_SECONDS)."""
    use_poll = server.adj.asyncore_use_poll

    def poll(timeout: float = LOOP_TIMEOUT) -> None:
        wasyncore.loop(timeout=max(0.0, timeout), map=socket_map, use_poll=use_poll, count=1)

    while (left := drain.remaining()) is None:
        poll()
    # Logged here, not in the signal handler: a handler that logs can deadlock on the lock of a log call it cut.
    log.info("SIGTERM: not ready, serving on while the platform stops routing", extra={"drain_s": drain.seconds})
    while (left := drain.remaining() or 0.0) > 0:
        poll(min(LOOP_TIMEOUT, left))
    log.info("drained, no longer accepting", extra={"drain_s": drain.seconds, "in_flight": _in_flight(socket_map)})
    _stop_accepting(server)
    finish_by = time.monotonic() + FINISH_SECONDS
    while _in_flight(socket_map) and time.monotonic() < finish_by:
        poll()


def _stop_accepting(server: Any) -> None:
    """Close this process's listening socket (other server processes keep theirs, on the same port)."""
    server.accepting = False
    server.del_channel()
    server.socket.close()


def _in_flight(socket_map: dict[int, Any]) -> int:
    """Connections with a request being read, queued, answered or with a response not yet sent."""
    return sum(
        1
        for channel in list(socket_map.values())
        if isinstance(channel, HTTPChannel)
        and (channel.requests or channel.request is not None or channel.total_outbufs_len)
    )


def _warm_up(rt: Runtime, parts: ApiParts, limit: int) -> None:
    try:
        if limit:
            recent = RecentOrders(rt.pg_read_connection, rt.store.reads, limit)
            count, seconds = warm(parts.cache.redis, recent, memory=parts.cache.memory)
            info(f"serve: warmed {count} orders into memory and Redis in {seconds:.2f}s (pid {os.getpid()})")
    except OrdersError as exc:
        # PostgreSQL down at start: serve anyway (ready says 503 while it is down), cold caches.
        log.warning("warm-up skipped", extra={"error": str(exc)})
    finally:
        parts.warmed.set()


def _supervise(body: Callable[[], None], processes: int, drain_seconds: float) -> None:
    """Fork ``processes`` servers, restart one that ends, forward SIGTERM/SIGINT and wait for them (each drains:
    it is killed only when it outlives the drain, the finish and a margin)."""
    grace = drain_seconds + FINISH_SECONDS + KILL_MARGIN_SECONDS
    # Forked, not spawned: every server inherits the one listening socket, bound before the fork.
    ctx = mp.get_context("fork")

    children: dict[int, ForkProcess] = {}

    def make_child(slot: int) -> ForkProcess:
        children[slot] = ctx.Process(target=_server_process, args=(body, slot), name=f"ordersctl-serve-{slot}")
        return children[slot]

    def relay() -> None:
        for child in list(children.values()):
            if child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)

    RelayingSupervisor(
        make_child, processes, grace=grace, restart_clean_exit=True, role="server process", relay=relay
    ).run()


@dataclass
class RelayingSupervisor(ProcessSupervisor):
    """Sends SIGTERM on to the children from the signal handler itself, not at the loop's next look: every
    server's readiness fails at once (the supervisor's own SIGTERM follows, and a draining server ignores it)."""

    relay: Callable[[], None] = lambda: None

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        super().stop(signum, frame)
        self.relay()


def _server_process(body: Callable[[], None], slot: int) -> None:
    """Body of a forked server process; it ends with ``os._exit``, so nothing of the parent's runs on exit."""
    code = 0
    identify(identity.process, slot)  # its log lines say which of the servers wrote them
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
