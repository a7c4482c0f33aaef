"""Worker processes forked from a zygote: a process forked from the supervisor before it has any thread or socket,
which imports what a worker needs once and then forks each worker on request.

Why: a spawned worker is a new interpreter that imports everything again (pydantic, the settings, psycopg,
confluent-kafka): about 0.25 s of CPU per worker and per restart. A worker forked from the supervisor itself would
inherit its health thread and listening socket (a fork beside a thread can inherit a held lock) and its signal
handlers. The zygote has none of those: it is forked while the supervisor is single-threaded, ignores SIGINT
(the supervisor decides what a Ctrl-C stops) and exits when the supervisor closes its request pipe.

Each worker is forked twice (zygote -> short-lived middle process -> worker) and the supervisor is a child
subreaper (Linux ``PR_SET_CHILD_SUBREAPER``): when the middle process exits, the worker becomes the supervisor's
own child, so it is watched, signalled and reaped as a spawned one was. The worker itself is a
``multiprocessing`` "fork" Process, so the library's after-fork hooks run in it (the report queue's).
Where a subreaper cannot be had (not Linux), ``Zygote.available()`` is False and workers are spawned.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
_PR_SET_NAME = 15
ZYGOTE_NAME = "ordersctl-zygote"  # its comm: "ordersctl-zygot"
log = logging.getLogger(__name__)
_POLL_SECONDS = 0.01  # how often join() looks at a worker that has not exited yet


class ZygoteGone(RuntimeError):
    """The zygote exited (or was killed): it forks nothing more."""


class ZygoteUnavailable(OSError):
    """No zygote can be forked here and now: the caller has threads already, or may not be a subreaper."""


def _prctl(option: int, value: int | bytes) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(option, value, 0, 0, 0) == 0)


def _set_subreaper(on: bool) -> bool:
    return _prctl(_PR_SET_CHILD_SUBREAPER, int(on))


def set_name(name: str) -> None:
    """The process's name in ps and top (``comm``), so that forked processes are told apart by more than their
    parent's command line."""
    _prctl(_PR_SET_NAME, name.encode()[:15])


class Zygote:
    """``start()`` forks it (the caller must have no other thread yet); ``fork(name, request)`` makes a worker that
    runs ``body(request)`` and returns its pid, a child of the caller from then on; ``close()`` ends it."""

    def __init__(self, body: Callable[[Any], None], preload: Sequence[str] = ()) -> None:
        self._body = body
        self._preload = preload
        self._pid: int | None = None
        self._requests: Connection | None = None

    @staticmethod
    def available() -> bool:
        return hasattr(os, "fork") and sys.platform.startswith("linux")

    def start(self) -> None:
        if threading.active_count() != 1:  # a fork beside a thread could inherit a lock the thread holds
            raise ZygoteUnavailable(f"a zygote is forked before any other thread exists ({threading.active_count()})")
        if not _set_subreaper(True):  # say, a sandbox that refuses prctl
            raise ZygoteUnavailable(f"cannot become a child subreaper: {os.strerror(ctypes.get_errno())}")
        ours, theirs = mp.Pipe()
        pid = os.fork()
        if pid == 0:  # the zygote
            code = 1
            try:
                ours.close()
                self._serve(theirs)
                code = 0
            except BaseException:
                log.exception("the worker zygote failed")  # the supervisor spawns its workers instead
            finally:
                os._exit(code)
        theirs.close()
        self._pid, self._requests = pid, ours

    @property
    def alive(self) -> bool:
        if self._pid is None:
            return False
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(self._pid, os.WNOHANG)[0] == 0:
                return True
        self._pid = None
        return False

    def fork(self, name: str, request: Any) -> int:
        if self._requests is None or not self.alive:
            raise ZygoteGone("the worker zygote is gone")
        try:
            self._requests.send((name, request))
            pid = self._requests.recv()
        except (EOFError, OSError) as exc:
            raise ZygoteGone("the worker zygote is gone") from exc
        if isinstance(pid, str):
            raise RuntimeError(f"the zygote could not fork {name}: {pid}")
        return int(pid)

    def close(self) -> None:
        if self._requests is not None:
            self._requests.close()  # EOF: the zygote exits
            self._requests = None
        if self._pid is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = None
        _set_subreaper(False)

    def _serve(self, requests: Connection) -> None:
        set_name(ZYGOTE_NAME)
        # Ctrl-C reaches the whole process group: the supervisor decides what it stops. `kill -USR1` of every
        # process of consume (workers dump their stacks) must not end the zygote either.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for module in self._preload:
            importlib.import_module(module)
        if threading.active_count() != 1:  # an import started a thread: forking beside it is what this avoids
            raise RuntimeError(f"the zygote has {threading.active_count()} threads after its imports")
        gc.collect()
        gc.freeze()  # what is here now is shared with every worker: the collector need not touch (copy) it there
        while True:
            try:
                name, request = requests.recv()
            except EOFError:
                return
            try:
                requests.send(self._fork_worker(requests, name, request))
            except OSError as exc:
                requests.send(f"{type(exc).__name__}: {exc}")

    def _fork_worker(self, requests: Connection, name: str, request: Any) -> int:
        read, write = os.pipe()
        middle = os.fork()
        if middle == 0:
            try:
                os.close(read)
                requests.close()  # the worker holds nothing of the zygote's
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGUSR1, signal.SIG_DFL)
                process = mp.get_context("fork").Process(target=_worker, args=(self._body, request, write), name=name)
                process.start()
                os.write(write, str(process.pid).encode())  # a few bytes: one write, read whole by one read
            finally:
                os._exit(0)  # the worker is orphaned: the supervisor, its subreaper, adopts it
        os.close(write)
        try:
            answer = os.read(read, 64)
        finally:
            os.close(read)
        os.waitpid(middle, 0)  # once the middle process is reaped, the worker is the supervisor's child
        if not answer:
            raise ChildProcessError(f"{name} was not forked")
        return int(answer)


def _worker(body: Callable[[Any], None], request: Any, pid_pipe: int) -> None:
    os.close(pid_pipe)  # the middle process's: the worker keeps no descriptor of the zygote's
    set_name(mp.current_process().name)
    body(request)


class ForkedChild:
    """A worker forked by the zygote, handled as ``multiprocessing.Process`` handles a child (supervision.Child)."""

    def __init__(self, zygote: Zygote, name: str, request: Any) -> None:
        self._zygote = zygote
        self._name = name
        self._request = request
        self.pid: int | None = None
        self.exitcode: int | None = None

    def start(self) -> None:
        self.pid = self._zygote.fork(self._name, self._request)

    def is_alive(self) -> bool:
        self._poll()
        return self.pid is not None and self.exitcode is None

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive() and (deadline is None or time.monotonic() < deadline):
            time.sleep(_POLL_SECONDS)

    def _signal(self, signum: int) -> None:
        if self.is_alive():
            assert self.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def _poll(self) -> None:
        if self.pid is None or self.exitcode is not None:
            return
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its code is lost
            self.exitcode = 255
            return
        if pid:
            self.exitcode = os.waitstatus_to_exitcode(status)
