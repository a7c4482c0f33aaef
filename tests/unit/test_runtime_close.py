"""A process whose work is done can always exit: closing clients is bounded when asked to be."""

from __future__ import annotations

import threading
import time

import pytest

from ordersctl.adapters import kafka as kafka_adapter
from ordersctl.config import load_settings
from ordersctl.errors import AccessDenied
from ordersctl.runtime import Runtime, finishes_within


class StuckProducer:
    """Blocks in flush like a librdkafka handle that never finishes closing."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def flush(self, timeout: float | None = None) -> int:
        self.release.wait()
        return 0


def test_finishes_within_tells_done_from_still_running() -> None:
    assert finishes_within(2, lambda: None, "quick")
    release = threading.Event()
    started = time.monotonic()
    assert not finishes_within(0.2, release.wait, "stuck")
    assert time.monotonic() - started < 1.5
    release.set()


def test_an_error_raised_while_closing_is_one_log_line_not_a_threads_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A consume worker stopped by a broker refusing its certificate: closing its consumer serves the error
    # callback again, which raises AccessDenied in the closing thread (CI printed its traceback after the reason).
    uncaught: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", uncaught.append)

    def close() -> None:
        raise AccessDenied("Kafka", "the broker refused the client certificate")

    assert finishes_within(2, close, "close-consumer")
    assert uncaught == []
    (record,) = [r for r in caplog.records if r.name == "ordersctl.runtime"]
    assert record.getMessage() == "close-consumer ended with an error" and record.exc_info is None
    assert record.__dict__["error"] == "Kafka: the broker refused the client certificate"


def test_runtime_close_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    stuck = StuckProducer()
    monkeypatch.setattr(kafka_adapter, "make_producer", lambda *a, **kw: stuck)
    rt = Runtime(load_settings(overrides={"kafka": {"bootstrap_servers": "127.0.0.1:1"}}))
    rt.producer("events")
    started = time.monotonic()
    assert rt.close(timeout=0.3) is False
    assert time.monotonic() - started < 2
    stuck.release.set()


def test_runtime_close_without_clients_is_done_at_once() -> None:
    rt = Runtime(load_settings(overrides={"kafka": {"bootstrap_servers": "127.0.0.1:1"}}))
    assert rt.close(timeout=5) is True
