"""A process whose work is done can always exit: closing clients is bounded when asked to be."""

from __future__ import annotations

import threading
import time

import pytest

from ordersctl.adapters import kafka as kafka_adapter
from ordersctl.config import load_settings
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
