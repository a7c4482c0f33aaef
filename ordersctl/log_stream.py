"""The JSON log stream's catch-alls (logs.py sets them up in JSON mode): what Python or a library would write to
stderr as text becomes a log record. Uncaught exceptions of any thread and "Exception ignored in" through their
hooks; ``kill -USR1``'s thread stacks through a pipe; anything else written to ``sys.stderr`` (a library's
``print``, ``traceback.print_exc`` of a server thread) line by line. What C code writes to fd 2 itself (a fatal
error) is out of reach."""

from __future__ import annotations

import faulthandler
import io
import logging
import os
import select
import sys
import threading
from types import TracebackType
from typing import Any

from ordersctl.logs import emit, identity


def capture_process_output() -> None:
    """Set the hooks and wrap ``sys.stderr`` (once: a second call keeps the wrapper)."""
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.unraisablehook = _log_unraisable
    if not isinstance(sys.stderr, StderrRecords):
        sys.stderr = StderrRecords(sys.stderr)


class StderrRecords(io.TextIOBase):
    """``sys.stderr`` in JSON mode: each line written becomes a record of logger ``stderr``; the handler writes to
    ``raw_stream``. Lines are gathered per thread (``print`` writes the text and the newline apart)."""

    def __init__(self, raw_stream: Any) -> None:
        super().__init__()
        self.raw_stream = raw_stream
        self._local = threading.local()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return int(self.raw_stream.fileno())

    def isatty(self) -> bool:
        return bool(self.raw_stream.isatty())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return str(self.raw_stream.encoding)

    def write(self, text: str) -> int:
        local = self._local
        if getattr(local, "emitting", False):
            return int(self.raw_stream.write(text))  # the logging machinery's own complaint: no loop
        *lines, local.pending = (getattr(local, "pending", "") + text).split("\n")
        local.emitting = True
        try:
            for line in lines:
                if line.strip():
                    emit(line, logging.WARNING, "stderr")
        finally:
            local.emitting = False
        return len(text)

    def flush(self) -> None:
        self.raw_stream.flush()


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("ordersctl").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return  # as threading's own hook: a thread that called sys.exit() ended quietly
    thread = args.thread.name if args.thread is not None else None
    logging.getLogger("ordersctl").critical(
        "uncaught exception in a thread", exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"thread_name": thread},
    )  # fmt: skip


def _log_unraisable(unraisable: Any) -> None:
    """What Python would print as "Exception ignored in ..." (a failing ``__del__``, a callback at exit)."""
    exc = unraisable.exc_value
    logging.getLogger("ordersctl").error(
        unraisable.err_msg or "Exception ignored in",
        exc_info=(unraisable.exc_type, exc, unraisable.exc_traceback) if exc is not None else None,
        # Its type only: its repr could show an order's personal data.
        extra={"object": type(unraisable.object).__qualname__},
    )


def dump_stacks_on(signum: int) -> None:
    """``kill -<signum>`` writes every thread's stack to the log and the process carries on. faulthandler writes
    them from the signal itself (it works while the interpreter is stuck in C); in JSON mode into a pipe, which a
    thread turns into one record."""
    if not identity.json:
        faulthandler.register(signum, all_threads=True)
        return
    read_fd, write_fd = os.pipe()
    faulthandler.register(signum, file=write_fd, all_threads=True)
    threading.Thread(target=_relay_stacks, args=(read_fd,), name="stack-dump", daemon=True).start()


def _relay_stacks(read_fd: int) -> None:
    logger = logging.getLogger("ordersctl.stacks")
    while chunk := os.read(read_fd, 65536):
        # One dump comes in many small writes: gather them until the pipe stays quiet.
        while select.select([read_fd], [], [], 0.2)[0]:
            chunk += os.read(read_fd, 65536)
        logger.warning("thread stacks", extra={"stacks": chunk.decode("utf-8", "replace")})
