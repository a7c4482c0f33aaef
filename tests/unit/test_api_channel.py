"""FlushAwareChannel: the main loop skips a connection whose output another thread is sending, and still sends
every byte of responses larger than the socket takes at once, to readers that are slow to read them."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import waitress

from ordersctl.api.channel import FlushAwareChannel, use_flush_aware_channels


def _channel() -> FlushAwareChannel:
    """A channel object without a server or socket: writable() reads only its own state."""
    channel = FlushAwareChannel.__new__(FlushAwareChannel)
    channel.will_close = channel.close_when_flushed = False
    channel.total_outbufs_len = 0
    channel.outbuf_lock = threading.Condition()
    return channel


def _held_by_another_thread(lock: threading.Condition) -> Callable[[], None]:
    taken, done = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            taken.set()
            done.wait(5)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert taken.wait(5)

    def release() -> None:
        done.set()
        thread.join(5)

    return release


def test_pending_output_is_writable_unless_another_thread_holds_the_lock() -> None:
    channel = _channel()
    assert not channel.writable()
    channel.total_outbufs_len = 10
    assert channel.writable()
    release = _held_by_another_thread(channel.outbuf_lock)
    try:
        assert not channel.writable()
        channel.close_when_flushed = True  # closing is not held back
        assert channel.writable()
    finally:
        release()
    channel.close_when_flushed = False
    assert channel.writable()  # and the lock is free again afterwards


def _app(body: bytes) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        # Several writes, as a streamed response makes: the worker sends while the main loop runs.
        return [body[i : i + 100_000] for i in range(0, len(body), 100_000)]

    return app


@pytest.fixture
def server_port() -> Iterator[tuple[int, bytes]]:
    body = bytes(range(256)) * 16_384  # 4 MiB: far more than a socket buffer
    sock = socket.create_server(("127.0.0.1", 0))
    socket_map: dict[int, Any] = {}
    server = waitress.create_server(_app(body), socket_map, sockets=[sock], threads=2)
    use_flush_aware_channels(socket_map)
    assert server.channel_class is FlushAwareChannel
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1], body
    finally:
        server.close()
        thread.join(5)


def test_large_responses_to_slow_readers_arrive_whole(server_port: tuple[int, bytes]) -> None:
    port, body = server_port
    for _ in range(3):  # keep-alive: each response completes and the next request is read
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        received = bytearray()
        while chunk := resp.read(65_536):
            received += chunk
            time.sleep(0.001)  # a slow reader: the server's send buffer fills, the rest waits in waitress
        assert resp.status == 200 and bytes(received) == body
        conn.request("GET", "/")
        assert conn.getresponse().read() == body
        conn.close()
