"""How a command's process ends: its exit handlers run, its output is flushed, and then it leaves without
tearing the interpreter down.

Why: taking the interpreter apart (every module's namespace, pydantic's schemas, the last garbage collection)
cost a short command about 80 ms of CPU after its last line, a sixth of ``status`` (docs/performance.md), and
does nothing the operating system does not do as well when the process ends. What a command must still do at
exit is done first: the exit handlers registered with ``atexit`` (logging's flush, OpenTelemetry's last
export, coverage's data, multiprocessing's clean-up), then the standard streams. While a thread that is not a
daemon is still running, or a profiler or debugger watches (``python -m cProfile`` writes its figures after the
program returns), the process exits the ordinary way.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

# What Python's own exit returns when flushing the standard streams fails (the reader of a pipe went away).
FLUSH_FAILED = 120


def leave(code: int) -> NoReturn:
    """End the process with ``code``; what the interpreter would do at exit is done, except taking it apart."""
    if _threads_to_wait_for() or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()  # private, but the interpreter's own exit does exactly this; stable since Python 3.0
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:  # one the command closed itself: nothing to flush, as Python skips it
            continue
        try:
            stream.flush()
        except OSError:  # the reader of a pipe went away
            code = code or FLUSH_FAILED
    os._exit(code)


def _threads_to_wait_for() -> bool:
    main = threading.main_thread()
    return any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate())
