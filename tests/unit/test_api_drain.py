"""serve's loop after SIGTERM (``Drain``, ``run_until_drained``) on a real waitress server on loopback: it answers
new connections for the drain, then refuses them, and a request in flight at the end of the drain still gets its
answer. The signal itself is the e2e test's (test_serve_drain.py); here ``Drain.begin`` is called directly."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import waitress
from waitress import wasyncore

from ordersctl.api.serving.channel import use_flush_aware_channels
from ordersctl.api.serving.server import Drain, run_until_drained
from tests.waiting import wait_for

SLOW_SECONDS = 1.0


class App:
    """/slow takes SLOW_SECONDS (and says when it has started); anything else answers at once."""

    def __init__(self) -> None:
        self.slow_started = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/slow":
            self.slow_started.set()
            time.sleep(SLOW_SECONDS)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


@contextmanager
def _draining_server(drain: Drain, app: App) -> Iterator[tuple[int, threading.Thread]]:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    socket_map: dict[int, Any] = {}
    server = waitress.create_server(app, socket_map, sockets=[sock], threads=4)
    use_flush_aware_channels(socket_map, drain.event)
    loop = threading.Thread(target=run_until_drained, args=(server, socket_map, drain), daemon=True)
    loop.start()
    try:
        yield port, loop
    finally:
        loop.join(10)
        server.task_dispatcher.shutdown()
        wasyncore.close_all(socket_map)
        sock.close()


def _get(port: int, path: str = "/") -> tuple[int, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Connection")
    finally:
        conn.close()


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_new_connections_are_answered_during_the_drain_and_refused_after_it() -> None:
    drain = Drain(1.0)
    with _draining_server(drain, App()) as (port, loop):
        assert _get(port) == (200, None)  # keep-alive before SIGTERM
        drain.begin()
        began = time.monotonic()
        assert drain.event.is_set()
        answered = 0
        while time.monotonic() - began < 0.8:
            assert _get(port) == (200, "close"), "answered during the drain, closing the connection"
            answered += 1
        assert answered >= 5
        loop.join(5)
        assert not loop.is_alive() and time.monotonic() - began >= 1.0
        assert _refused(port)


def test_a_request_in_flight_when_the_drain_ends_is_answered_and_drain_0_does_not_wait() -> None:
    app = App()
    drain = Drain(0.0)
    with _draining_server(drain, app) as (port, loop):
        result: list[tuple[int, str | None]] = []
        client = threading.Thread(target=lambda: result.append(_get(port, "/slow")), daemon=True)
        client.start()
        assert app.slow_started.wait(5)
        began = time.monotonic()
        drain.begin()
        wait_for(lambda: _refused(port), 2, "drain 0: no longer accepting at once", interval=0.05)
        assert loop.is_alive(), "still finishing the request in flight"
        client.join(5)
        loop.join(5)
        assert result == [(200, "close")]
        assert not loop.is_alive() and time.monotonic() - began < SLOW_SECONDS + 1


def test_a_second_sigterm_does_not_restart_the_drain() -> None:
    drain = Drain(5.0)
    drain.begin()
    first = drain.remaining()
    time.sleep(0.05)
    drain.begin()
    second = drain.remaining()
    assert first is not None and second is not None and second < first
