"""Logging: JSON lines keep the traceback; repeated warnings are rate-limited."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from ordersctl.logs import (
    QUEUE_WARNING_SECONDS,
    EarlyRateLimitedWarnings,
    JsonFormatter,
    RateLimit,
    RateLimitFilter,
    setup_logging,
)
from tests.fakes import FakeClock


def _explode() -> None:
    raise ValueError("the reason")


def test_json_line_carries_the_whole_traceback() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs.traceback")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            _explode()
        except ValueError:
            logger.exception("it failed", extra={"order_uid": "abc"})
    finally:
        logger.removeHandler(handler)
    entry = json.loads(out.getvalue())
    assert entry["msg"] == "it failed" and entry["order_uid"] == "abc" and entry["exc"] == "ValueError"
    trace = entry["exc_info"]
    assert trace.startswith("Traceback (most recent call last):")
    assert "in _explode" in trace and trace.rstrip().endswith("ValueError: the reason")


def test_rate_limit_allows_one_per_key_per_window_and_counts_the_rest() -> None:
    clock = FakeClock()
    limit = RateLimit(10, clock)
    assert limit.allow("postgres") == 0
    assert [limit.allow("postgres") for _ in range(3)] == [None, None, None]
    assert limit.allow("redis") == 0, "keys are limited separately"
    clock.now += 9.9
    assert limit.allow("postgres") is None
    clock.now += 0.1
    assert limit.allow("postgres") == 4, "the next one allowed says how many were dropped"
    assert limit.allow("postgres") is None


def test_rate_limit_filter_keys_on_the_template_not_the_formatted_message() -> None:
    clock = FakeClock()
    limiter = RateLimitFilter(60, clock)
    records = [logging.LogRecord("waitress.queue", logging.WARNING, "", 0, "Task queue depth is %d", (n,), None)
               for n in range(5)]  # fmt: skip
    other = logging.LogRecord("waitress.queue", logging.WARNING, "", 0, "something else", (), None)
    assert [limiter.filter(r) for r in records] == [True, False, False, False, False]
    assert limiter.filter(other)
    clock.now += 60
    again = logging.LogRecord("waitress.queue", logging.WARNING, "", 0, "Task queue depth is %d", (9,), None)
    assert limiter.filter(again) and getattr(again, "suppressed", None) == 4


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    queue = logging.getLogger("waitress.queue")
    saved = (root.handlers[:], root.level, queue.filters[:], queue.level)
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    queue.filters[:], queue.level = saved[2], saved[3]


@pytest.mark.usefixtures("restore_logging")
def test_waitress_queue_warnings_are_at_most_one_a_minute(capsys: pytest.CaptureFixture[str]) -> None:
    assert QUEUE_WARNING_SECONDS >= 60
    setup_logging("INFO", "json")
    setup_logging("INFO", "json")  # a second set-up in the same process adds no second filter
    queue = logging.getLogger("waitress.queue")
    for depth in range(500):
        queue.warning("Task queue depth is %d", depth)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["msg"] for line in lines] == ["Task queue depth is 0"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_early_rate_limited_warnings_make_no_record_for_what_the_filter_drops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    logger = logging.getLogger("test.early-rate-limit")
    logger.propagate = False
    handler = _Records()
    logger.handlers[:] = [handler]
    logger.filters[:] = [RateLimitFilter(60, clock)]
    made: list[object] = []
    make_record = logger.makeRecord

    def counted(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(args[4])
        return make_record(*args, **kwargs)

    monkeypatch.setattr(logger, "makeRecord", counted)
    early = EarlyRateLimitedWarnings(logger)
    for depth in range(5):
        early.warning("Task queue depth is %d", depth)
    assert [r.getMessage() for r in handler.records] == ["Task queue depth is 0"]
    assert len(made) == 1  # the four dropped made no record
    assert handler.records[0].funcName == "test_early_rate_limited_warnings_make_no_record_for_what_the_filter_drops"
    clock.now += 60
    early.warning("Task queue depth is %d", 9)
    assert handler.records[-1].getMessage() == "Task queue depth is 9"
    assert getattr(handler.records[-1], "suppressed", None) == 4  # counted as the filter alone counts
    logger.setLevel(logging.ERROR)
    early.warning("Task queue depth is %d", 10)  # below the logger's level: neither logged nor counted
    logger.setLevel(logging.NOTSET)
    logger.filters[:] = []
    early.warning("unlimited")  # without a RateLimitFilter it is logger.warning
    assert handler.records[-1].getMessage() == "unlimited"
