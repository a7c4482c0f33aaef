"""The read path's Redis GET: each server thread keeps a connection of its own and speaks to it directly.

Why not ``redis.Redis.get``: on one thread it costs more CPU than the round trip itself (checking a
connection out of the pool and back under the pool's lock, a readiness poll, the retry, event and metrics
hooks). In the server the larger cost is elsewhere: each socket call with a Python-level timeout is two system
calls (a poll, then the call), and each lets go of the interpreter lock, which under load means handing it to
another thread and waiting to get it back. Here a GET is one ``send`` and one ``recv`` on a socket whose
timeouts the kernel enforces (SO_SNDTIMEO, SO_RCVTIMEO), parsed by hiredis (docs/performance.md: what it saves).

redis-py still makes the connections (address, AUTH, SELECT, TLS, the protocol from the URL) and owns them:
they are taken from the client's pool once per thread and never given back, so closing the client closes them.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from typing import Any

import hiredis
import redis

from ordersctl.cache.redis_layer import RedisPipeline

_BUFFER = 64 * 1024


class _Stale(Exception):
    """A kept connection the server had closed meanwhile (a restart, an idle timeout)."""


class _Link:
    """One thread's connection: redis-py's ``Connection`` for connecting, our own send and read for GET."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection
        self._sock: socket.socket | None = None
        self._reader = hiredis.Reader()
        self._buffer = bytearray(_BUFFER)
        self._served = False  # whether this socket answered before: only then can its failure mean "stale"

    def _socket(self) -> socket.socket:
        # Private to redis-py, but the one way to its socket; a new one appears whenever it reconnects.
        sock: socket.socket | None = self._connection._sock
        if sock is None:
            self._connection.connect()
            sock = self._connection._sock
        if sock is not self._sock:
            self._sock, self._served, self._reader = sock, False, hiredis.Reader()
            _kernel_timeouts(sock, self._connection.socket_timeout)
        return self._sock

    def get(self, command: bytes) -> object:
        sock = self._socket()
        try:
            sock.sendall(command)
            reply = self._read(sock)
        except (BlockingIOError, TimeoutError) as exc:  # a kernel timeout is EAGAIN; a Python-level one, timeout
            self.close()
            raise redis.TimeoutError(f"Redis did not answer: {exc}") from None
        except (OSError, EOFError, hiredis.ProtocolError) as exc:
            served = self._served
            self.close()
            if served:
                raise _Stale from exc
            raise redis.ConnectionError(f"Redis connection failed: {exc}") from None
        self._served = True
        if isinstance(reply, hiredis.ReplyError):
            raise redis.ResponseError(str(reply))
        return reply

    def _read(self, sock: socket.socket) -> object:
        reader, buffer = self._reader, self._buffer
        reply = reader.gets()
        # RESP3 (redis-py's default) lets the server push messages at any time; none is the GET's answer.
        while reply is False or isinstance(reply, hiredis.PushNotification):
            if reply is False:
                count = sock.recv_into(buffer)
                if count == 0:
                    raise EOFError("connection closed by Redis")
                reader.feed(buffer, 0, count)  # type: ignore[arg-type]  # any buffer; the stub says bytes
            reply = reader.gets()
        return reply

    def close(self) -> None:
        self._sock = None
        self._connection.disconnect()


def _kernel_timeouts(sock: socket.socket, seconds: float | None) -> None:
    """A blocking socket with the same timeout enforced by the kernel, where that is known to work (Linux, not
    TLS); elsewhere the socket keeps redis-py's Python-level timeout."""
    if sys.platform != "linux" or type(sock) is not socket.socket or seconds is None:
        return
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    sock.settimeout(None)


class ThreadConnections:
    """``redis.Redis`` as the read path uses it: GET on the calling thread's own connection; pipelines and
    pings on the client as they are.

    Failures mean what they meant through the client: a refused or broken connection is a
    ``redis.ConnectionError``, no answer within the client's socket timeout a ``redis.TimeoutError``, and a
    kept connection the server had closed is reconnected and the GET sent again (the pool's checkout did
    that before)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._local = threading.local()

    def get(self, name: str, /) -> object:
        key = name.encode()
        command = b"*2\r\n$3\r\nGET\r\n$%d\r\n%b\r\n" % (len(key), key)
        link: _Link | None = getattr(self._local, "link", None)
        if link is None:
            link = self._local.link = _Link(self._client.connection_pool.get_connection())
        try:
            return link.get(command)
        except _Stale:
            return link.get(command)

    def pipeline(self, *, transaction: bool) -> RedisPipeline:
        return self._client.pipeline(transaction=transaction)

    def ping(self) -> object:
        return self._client.ping()
