"""Retrying what failed transiently, with backoff, while the worker keeps polling with its partitions paused:
it stays in the group, serves rebalances, and resumes by itself once the dependency is back."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

from ordersctl.config import PipelineSettings
from ordersctl.errors import TransientError
from ordersctl.pipeline.backoff import Backoff
from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.pipeline.fetch_buffer import FetchBuffer

log = logging.getLogger(__name__)
T = TypeVar("T")
REPORT_SLICE_SECONDS = 0.5  # while waiting for a store in flight, the progress reports come at least this often


class Abandoned(Exception):
    """Shutdown was asked while a batch waited on a dependency: leave it uncommitted."""


def once(operation: str, fn: Callable[[], T]) -> T:
    """One attempt, where retrying is not possible (inside a rebalance callback)."""
    return fn()


class RetryPolicy:
    """``until_done`` runs an operation until it stops failing transiently; ``while_waiting`` runs during the
    waits (the progress line shows the retries as they happen)."""

    def __init__(
        self,
        buffer: FetchBuffer,
        stop: threading.Event,
        settings: PipelineSettings,
        counters: PipelineCounters,
        while_waiting: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
        blocked: Callable[[str | None], None] = lambda operation: None,
    ) -> None:
        self._buffer = buffer
        self._stop = stop
        self._settings = settings
        self._counters = counters
        self._while_waiting = while_waiting
        self._clock = clock
        self._blocked = blocked

    def until_done(self, operation: str, fn: Callable[[], T], first: Future[T] | None = None) -> T:
        """``fn()`` until it stops failing transiently; ``first`` is an attempt already running elsewhere, waited
        for while the progress reports go on (saying what the worker is blocked on, ``blocked``)."""
        backoff = Backoff(self._settings.retry_initial_seconds, self._settings.retry_max_seconds)
        self._blocked(operation)
        try:
            while True:
                try:
                    if first is not None:
                        attempt, first = first, None
                        return self._result(attempt)
                    return fn()
                except TransientError as exc:
                    if self._stop.is_set():
                        raise Abandoned from exc
                    delay = backoff.next()
                    self._counters.retried(operation)
                    log.warning(
                        "transient failure, retrying",
                        extra={"operation": operation, "error": str(exc), "attempt": backoff.attempt,
                               "retry_in_s": round(delay, 2)},
                    )  # fmt: skip
                    self._wait(delay)
        finally:
            self._blocked(None)
            self._buffer.resume_all()

    def _result(self, attempt: Future[T]) -> T:
        while True:
            try:
                return attempt.result(timeout=REPORT_SLICE_SECONDS)
            except concurrent.futures.TimeoutError:
                self._while_waiting()

    def _wait(self, seconds: float) -> None:
        """Wait, polling so the group keeps us; anything fetched meanwhile is kept for the next batch."""
        deadline = self._clock() + seconds
        while not self._stop.is_set():
            left = deadline - self._clock()
            if left <= 0:
                return
            self._while_waiting()
            self._buffer.hold_while_paused(min(left, 0.2))
