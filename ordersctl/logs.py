"""Logging set-up: JSON lines when stderr is not a terminal, Rich console otherwise.

In JSON mode stderr is the log stream and nothing else: every line is one JSON object carrying ``pid``, ``process``
(the command) and, in a worker process, ``worker``. Console lines (``output.info``) and the error line at the CLI's
edge are records; so are Python warnings, and (log_stream.py) uncaught exceptions, the thread stacks of
``kill -USR1`` and any other text written to ``sys.stderr``. librdkafka logs through the Python logger
(adapters/kafka.py) and waitress logs with ``logging`` anyway.

Log calls pass identifiers (topic, partition, offset, order_uid) as ``extra`` fields; never names, phones,
emails, addresses or secrets.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ordersctl.domain.times import utc_z
from ordersctl.masking import SecretFilter

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_WRITER = {"pid", "process", "worker"}
# waitress warns "Task queue depth is N" for every request queued behind busy threads: hundreds a second
# under load, each saying the same thing.
QUEUE_WARNING_SECONDS = 60.0


@dataclass
class StreamIdentity:
    """Who writes this process's log lines: the command (``consume``, ``serve``, ...) and, in a worker process,
    the worker's number; ``json`` is whether stderr is the JSON log stream (None until logging is set up)."""

    process: str = "ordersctl"
    worker: int | None = None
    json: bool | None = None


identity = StreamIdentity()


def identify(process: str, worker: int | None = None) -> None:
    """Name the process on every later line (a forked child keeps its parent's name unless it says)."""
    identity.process, identity.worker = process, worker


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the process's identity, the record's ``extra``
    fields and, for an exception, its traceback."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": utc_z(_moment(record), "milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process or os.getpid(),
            "process": identity.process,
        }
        if identity.worker is not None:
            entry["worker"] = identity.worker
        # pid, process and worker always name the writer, whatever fields a record brings.
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD and k not in _WRITER})
        if record.exc_info and record.exc_info[0] is not None:
            entry["exc"] = record.exc_info[0].__name__
            # Cached on the record as logging.Formatter does, so other handlers of the record reuse it.
            if not record.exc_text:
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def _moment(record: logging.LogRecord) -> datetime:
    # The record's own milliseconds, as logging computed them: a float turned into a datetime is rounded to the
    # microsecond and could name the next millisecond.
    return datetime.fromtimestamp(int(record.created), UTC).replace(microsecond=int(record.msecs) * 1000)


class RateLimit:
    """At most one event per key every ``seconds``. Keys come from a small fixed set (dependency names,
    message templates), so the table stays small."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._next: dict[Hashable, float] = {}
        self._dropped: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def allow(self, key: Hashable) -> int | None:
        """None: drop this event. Otherwise how many events of ``key`` were dropped since the last one allowed,
        so that the one logged can say how many it stands for."""
        now = self._clock()
        with self._lock:
            if self._dropped_now(key, now):
                return None
            self._next[key] = now + self._seconds
            return self._dropped.pop(key, 0)

    def drop_if_limited(self, key: Hashable) -> bool:
        """True, counted as one dropped, when ``allow(key)`` would drop an event now; False leaves the decision
        to ``allow`` (so two callers that both get False still make one event)."""
        with self._lock:
            return self._dropped_now(key, self._clock())

    def _dropped_now(self, key: Hashable, now: float) -> bool:
        """With the lock held: whether an event of ``key`` at ``now`` is dropped, and if so count it."""
        if now < self._next.get(key, now):
            self._dropped[key] = self._dropped.get(key, 0) + 1
            return True
        return False


class RateLimitFilter(logging.Filter):
    """Passes at most one record per logger and message template every ``seconds``; the next record passed
    carries ``suppressed``, the number dropped in between. For loggers that log %-style templates (a fixed
    set of keys), such as waitress's."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._limit = RateLimit(seconds, clock)

    def filter(self, record: logging.LogRecord) -> bool:
        # The template, not the formatted text: "depth is 812" and "depth is 813" are the same warning.
        dropped = self._limit.allow(self._key(record.name, record.msg))
        if dropped is None:
            return False
        if dropped:
            record.suppressed = dropped
        return True

    def drop_early(self, name: str, template: object) -> bool:
        """What ``filter`` would do to a record of logger ``name`` with this template, decided before the
        record is made: True when it would drop it (counted as dropped), False when it may pass."""
        return self._limit.drop_if_limited(self._key(name, template))

    @staticmethod
    def _key(name: str, template: object) -> tuple[str, str]:
        return name, str(template)


class EarlyRateLimitedWarnings:
    """``logger.warning`` that asks the logger's ``RateLimitFilter`` before a record is made: for a caller that
    warns on a hot path, where making a record (caller lookup, LogRecord) costs more than the rest of its work.
    What is logged, and each ``suppressed`` count, is what the filter alone would give."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def warning(self, msg: object, *args: object, **kwargs: Any) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.WARNING):
            return
        for f in logger.filters:
            if isinstance(f, RateLimitFilter) and f.drop_early(logger.name, msg):
                return
        kwargs.setdefault("stacklevel", 2)  # the record names the caller, as logger.warning would
        logger.warning(msg, *args, **kwargs)


def setup_logging(
    level: str = "INFO", fmt: str = "auto", process: str | None = None, worker: int | None = None
) -> None:
    """Configure the root logger once per process (workers call it again after spawn, naming themselves)."""
    if process is not None:
        identify(process, worker)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    identity.json = use_json
    handler: logging.Handler
    if use_json:
        # The stream itself, not what sys.stderr may become (log_stream: it turns stray text into records).
        handler = logging.StreamHandler(getattr(sys.stderr, "raw_stream", sys.stderr))
        handler.setFormatter(JsonFormatter())
    else:
        from rich.logging import RichHandler

        from ordersctl.output import err_console

        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=False)
    # Every record written passes the handler's filters, whichever logger made it: secret values never get out.
    handler.addFilter(SecretFilter(_STANDARD))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # librdkafka and psycopg pool chatter stays at WARNING unless asked for.
    for noisy in ("psycopg.pool", "waitress.queue"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    queue = logging.getLogger("waitress.queue")
    for old in [f for f in queue.filters if isinstance(f, RateLimitFilter)]:
        queue.removeFilter(old)  # called again in the same process: one filter, not one per call
    queue.addFilter(RateLimitFilter(QUEUE_WARNING_SECONDS))
    logging.captureWarnings(True)  # warnings.warn: a record of logger py.warnings, not a line of its own
    if use_json:
        from ordersctl.log_stream import capture_process_output

        capture_process_output()


def json_stream(fmt: str = "auto") -> bool:
    """Whether stderr is the JSON log stream; before logging is set up (an error before the settings could be
    loaded), logging is set up with ``fmt``, the format as a flag or the environment gave it."""
    if identity.json is None:
        setup_logging("INFO", fmt)
    return bool(identity.json)


def emit(message: str, level: int = logging.INFO, name: str = "ordersctl") -> None:
    """A line meant for the reader whatever ``log.level`` says (a summary, the error line at the edge), as a log
    record: it passes the handler's filters (masking) like any other."""
    logger = logging.getLogger(name)
    logger.handle(logger.makeRecord(logger.name, level, "(output)", 0, message, (), None))
