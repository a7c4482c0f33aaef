"""FlushAwareChannel: the main loop skips a connection whose output another thread is sending, and still sends
every byte of responses larger than the socket takes at once, to readers that are slow to read them."""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import waitress

from ordersctl.api.serving.channel import FlushAwareChannel, use_flush_aware_channels


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


@contextlib.contextmanager
def _running(
    app: Callable[[dict[str, Any], Any], Iterable[bytes]], draining: threading.Event | None = None
) -> Iterator[int]:
    """A waitress server on our channels, on a free port, for the block's duration."""
    sock = socket.create_server(("127.0.0.1", 0))
    socket_map: dict[int, Any] = {}
    server = waitress.create_server(app, socket_map, sockets=[sock], threads=2)
    use_flush_aware_channels(socket_map, draining)
    assert issubclass(server.channel_class, FlushAwareChannel)
    stop = threading.Event()

    def serve() -> None:
        # Turns of the loop until asked to stop, so that the sockets are closed only once it has: closed under a
        # running select, the loop thread would fail on a closed descriptor.
        while not stop.is_set():
            server.asyncore.loop(timeout=0.05, map=socket_map, count=1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.fixture
def server_port() -> Iterator[tuple[int, bytes]]:
    body = bytes(range(256)) * 16_384  # 4 MiB: far more than a socket buffer
    with _running(_app(body)) as port:
        yield port, body


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


def _sends(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the channels hand to the socket, one entry per send."""
    sent: list[bytes] = []
    original = FlushAwareChannel.send

    def send(self: FlushAwareChannel, data: bytes, do_close: bool = True) -> int:
        sent.append(bytes(data))
        result: int = original(self, data, do_close)
        return result

    monkeypatch.setattr(FlushAwareChannel, "send", send)
    return sent


def test_a_one_chunk_response_goes_out_in_one_send_with_its_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Headers and body in two sends cost a system call, a TCP segment and a hand-off of the interpreter lock per
    # request: about a tenth of the server's CPU for an order from memory (bench/serve.py).
    sent = _sends(monkeypatch)
    body = b'{"order_uid":"b563feb7b2b84b6test"}'

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    with _running(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == body
        conn.close()
    assert len(sent) == 1, f"{len(sent)} sends"
    assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n") and sent[0].endswith(b"\r\n\r\n" + body)


def test_a_response_without_a_length_is_still_chunked_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"first ", b"second"]

    with _running(app) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        resp = conn.getresponse()
        assert resp.getheader("Transfer-Encoding") == "chunked" and resp.read() == b"first second"
        conn.close()


def test_while_draining_each_response_closes_its_connection() -> None:
    # A keep-alive client then connects again, through the platform's routing, which by then leads elsewhere.
    body = b"ok"

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    draining = threading.Event()
    with _running(app, draining) as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/")
        first = conn.getresponse()
        assert first.read() == body and first.getheader("Connection") is None  # keep-alive (HTTP/1.1's default)
        assert conn.sock is not None
        draining.set()
        conn.request("GET", "/")
        second = conn.getresponse()
        assert second.read() == body and second.getheader("Connection") == "close"
        assert conn.sock is None  # http.client closed it as told; its next request connects anew
        conn.request("GET", "/")
        assert conn.getresponse().read() == body
        conn.close()
