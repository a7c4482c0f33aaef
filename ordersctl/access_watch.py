"""Stopping a long-running command whose credentials stopped working.

A server keeps its pooled connections when its password is changed or its role loses LOGIN, and answers 503 on
every request that needs a new one, for ever. ``AccessWatch`` checks every ``every`` seconds that the service
still accepts a new connection; when it refuses us (``AccessDenied``), it keeps the error and asks this process to
stop as a platform would (SIGTERM: the server finishes as on any stop), and the command then raises the error
(one line, exit 2). An outage is the check's business no more than the server's: it stays transient.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

from ordersctl.errors import AccessDenied

log = logging.getLogger(__name__)
CHECK_EVERY_SECONDS = 10.0


def _terminate_this_process() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class AccessWatch:
    """``check()`` raises AccessDenied when the service refuses us; anything else it raises is not ours to judge."""

    def __init__(
        self,
        check: Callable[[], None],
        every: float = CHECK_EVERY_SECONDS,
        stop_process: Callable[[], None] = _terminate_this_process,
    ) -> None:
        self._check = check
        self._every = every
        self._stop_process = stop_process
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="access-watch", daemon=True)
        self.error: AccessDenied | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self._every)

    def _run(self) -> None:
        while not self._done.wait(self._every):
            try:
                self._check()
            except AccessDenied as exc:
                self.error = exc
                log.error("stopping: access refused", extra={"error": str(exc)})
                self._stop_process()
                return
            except Exception as exc:  # an outage, say: the server's own requests meet it and report it
                log.debug("access check failed", extra={"error": str(exc)})
