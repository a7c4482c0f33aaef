"""Where a worker's Prometheus metrics listen."""

from __future__ import annotations

import urllib.request

import pytest

from ordersctl.config import load_settings
from ordersctl.pipeline.metrics import PipelineMetrics


def test_the_metrics_host_is_a_setting_and_metrics_bind_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().pipeline.metrics_host == "127.0.0.1"
    everywhere = "0.0.0.0"  # noqa: S104 (what a container needs)
    monkeypatch.setenv("ORDERS_PIPELINE__METRICS_HOST", everywhere)
    host = load_settings().pipeline.metrics_host
    assert host == everywhere
    metrics = PipelineMetrics()
    metrics.stored.inc(3)
    bound_host, port = metrics.serve(host, 0)
    assert bound_host == everywhere, "a container publishes only ports bound beyond loopback"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        assert "ordersctl_orders_stored_total 3.0" in answer.read().decode()
