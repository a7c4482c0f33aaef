"""waitress's HTTP channel without its busy loop while a worker thread sends a response, and whose responses of
one chunk go out in one send with their headers (``OneSendTask``).

waitress's worker thread sends a response itself (``send_bytes`` 1): under the channel's output lock it appends
the bytes to the output buffer and sends them, and the socket send lets go of the interpreter lock. Meanwhile
the main thread's loop sees output pending (``writable()``), so it asks ``select`` for the socket's
writability, which a client socket nearly always has; ``select`` returns at once, ``handle_write`` finds the
lock taken and does nothing, and the loop goes round again, on the interpreter lock the worker needs to finish,
until it gets it back, calling ``readable()`` and ``writable()`` of every connection each round
(docs/performance.md: how many rounds a request cost, and what leaving them out saved).

``FlushAwareChannel.writable`` leaves a channel out while another thread holds its output lock. Nothing
waits on that: a thread that lets go of the lock with output still pending pulls the server's trigger
(``write_soon`` when its send did not take everything, ``service`` after every request, the high-watermark
wait before it waits), which wakes the loop to look again; closing (``will_close``, ``close_when_flushed``)
counts as before.
"""

from __future__ import annotations

import threading
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import WSGITask


class OneSendTask(WSGITask):  # type: ignore[misc]  # waitress has no type information
    """A response whose body fits its first write goes out as one send with its headers.

    waitress writes the headers, then each body chunk, and sends every write at once (``send_bytes`` 1): two
    system calls and two TCP segments for a one-chunk response, each send letting go of the interpreter lock.
    Our responses are one chunk (falcon's ``resp.data``). Anything else (no Content-Length, chunked, HEAD, an
    empty body, more than Content-Length) is written by waitress as before."""

    wrote_header: bool  # waitress's own attribute, declared for the type checker

    def build_response_header(self) -> bytes:
        # Draining (SIGTERM): every response closes its connection, so that a keep-alive client connects again,
        # through the platform's routing, which by then leads to another server. It is still answered here.
        draining = self.channel.draining
        if draining is not None and draining.is_set() and not self.close_on_finish:
            self.set_close_on_finish()
        head: bytes = super().build_response_header()
        return head

    def write(self, data: bytes) -> None:
        fits = self.content_length is not None and len(data) <= self.content_length - self.content_bytes_written
        if self.wrote_header or not (self.complete and data and self.has_body and fits) or self.chunked_response:
            super().write(data)
            return
        head = self.build_response_header()
        self.wrote_header = True
        self.content_bytes_written += len(data)
        self.channel.write_soon(head + data)


class FlushAwareChannel(HTTPChannel):  # type: ignore[misc]  # waitress has no type information
    task_class = OneSendTask
    draining: threading.Event | None = None  # set: the server is draining, responses close their connection

    def writable(self) -> bool:
        if self.will_close or self.close_when_flushed:
            return True
        if not self.total_outbufs_len:
            return False
        # Taken by another thread: that thread is sending, or will pull the trigger when it leaves output behind.
        lock = self.outbuf_lock
        if not lock.acquire(blocking=False):
            return False
        lock.release()
        return True


def use_flush_aware_channels(socket_map: dict[int, Any], draining: threading.Event | None = None) -> None:
    """Make every waitress server in ``socket_map`` (the ``map`` given to ``create_server``) accept its
    connections as ``FlushAwareChannel``; once ``draining`` is set, each response closes its connection."""
    channel_class: type[FlushAwareChannel] = FlushAwareChannel
    if draining is not None:
        channel_class = type("FlushAwareChannel", (FlushAwareChannel,), {"draining": draining})
    for dispatcher in socket_map.values():
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel_class
