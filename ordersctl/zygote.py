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

from ordersctl.process_name import ZYGOTE_NAME, prctl, set_name
from ordersctl.supervision import Child

_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
log = logging.getLogger(__name__)
_POLL_SECONDS = 0.01  # how often join() looks at a worker that has not exited yet
ANSWER_SECONDS = 30.0  # for the zygote to be ready (its imports) and to answer a fork: then it is given up
_READY = "ready"


class ZygoteGone(RuntimeError):
    """The zygote exited (or was killed): it forks nothing more."""


class ZygoteUnavailable(OSError):
    """No zygote can be forked here and now: the caller has threads already, or may not be a subreaper."""


def _set_subreaper(on: bool) -> bool:
    return prctl(_PR_SET_CHILD_SUBREAPER, int(on))


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
        _flush_stdio()  # else what is buffered now would be written again by every process forked below
        pid = os.fork()
        if pid == 0:  # the zygote
            code = 1
            try:
                ours.close()
                self._serve(theirs)
                code = 0
            except BaseException:
                log.exception("the worker zygote failed")  # its caller spawns its workers instead
            finally:
                os._exit(code)
        theirs.close()
        self._pid, self._requests = pid, ours
        try:
            self._answer()  # its imports done: from here on a failure of the zygote is a surprise
        except ZygoteGone as exc:
            self.close()
            raise ZygoteUnavailable(str(exc)) from None

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
        """The new worker's pid; ZygoteGone when the zygote cannot make it (then it is closed)."""
        if self._requests is None or not self.alive:
            raise ZygoteGone("the worker zygote is gone")
        try:
            self._requests.send((name, request))
        except OSError as exc:
            self.close()
            raise ZygoteGone(f"the worker zygote is gone: {exc}") from None
        answer = self._answer()
        if not isinstance(answer, int):
            self.close()
            raise ZygoteGone(f"the zygote could not fork {name}: {answer}")
        return answer

    def _answer(self) -> Any:
        """The zygote's next answer, within ANSWER_SECONDS: a stopped or stuck zygote must not stop its caller."""
        assert self._requests is not None
        try:
            if self._requests.poll(ANSWER_SECONDS):
                return self._requests.recv()
        except (EOFError, OSError):
            pass
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
        self.close()
        raise ZygoteGone("the worker zygote did not answer")

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
        requests.send(_READY)
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
        _flush_stdio()
        middle = os.fork()
        if middle == 0:
            try:
                os.close(read)
                requests.close()  # the worker holds nothing of the zygote's
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


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _worker(body: Callable[[Any], None], request: Any, pid_pipe: int) -> None:
    # The dispositions of a new process, not the zygote's (it ignores Ctrl-C and USR1); set here, in the worker,
    # since a Ctrl-C in the middle process would leave a worker nobody was told about.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    os.close(pid_pipe)  # the middle process's: the worker keeps no descriptor of the zygote's
    set_name(mp.current_process().name)
    body(request)


class ForkedChild:
    """A worker forked by the zygote, handled as ``multiprocessing.Process`` handles a child (supervision.Child).
    Should the zygote fail to fork it, ``instead`` makes the child that runs in its place (a spawned one)."""

    def __init__(self, zygote: Zygote, name: str, request: Any, instead: Callable[[], Child]) -> None:
        self._zygote = zygote
        self._name = name
        self._request = request
        self._make_instead = instead
        self._instead: Child | None = None
        self._pid: int | None = None
        self._exitcode: int | None = None

    @property
    def pid(self) -> int | None:
        return self._instead.pid if self._instead is not None else self._pid

    @property
    def exitcode(self) -> int | None:
        return self._instead.exitcode if self._instead is not None else self._exitcode

    def start(self) -> None:
        try:
            self._pid = self._zygote.fork(self._name, self._request)
        except ZygoteGone:
            self._instead = self._make_instead()
            self._instead.start()

    def is_alive(self) -> bool:
        if self._instead is not None:
            return self._instead.is_alive()
        self._poll()
        return self._pid is not None and self._exitcode is None

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def join(self, timeout: float | None = None) -> None:
        if self._instead is not None:
            self._instead.join(timeout)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.is_alive() and (deadline is None or time.monotonic() < deadline):
            time.sleep(_POLL_SECONDS)

    def _signal(self, signum: int) -> None:
        if self.is_alive():
            assert self.pid is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def _poll(self) -> None:
        if self._pid is None or self._exitcode is not None:
            return
        try:
            pid, status = os.waitpid(self._pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: its code is lost
            self._exitcode = 255
            return
        if pid:
            self._exitcode = os.waitstatus_to_exitcode(status)
