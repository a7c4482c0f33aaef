"""Redis turned off (``redis.url`` empty): serve answers from memory and PostgreSQL without building a Redis
client or logging a Redis error per request, status is healthy, cache warm says there is nothing to warm."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.e2e.test_serve import _free_port, _get
from tests.helpers import create_topics, ordersctl, send, start_ordersctl

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_every_command_runs_without_redis(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": ""})})
    create_topics(settings)
    messages = list(OrderGenerator(seed=5).messages(20))
    send(settings, messages)
    consumed = ordersctl(settings, "consume", "--stop-when-idle", "2", timeout=180)
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    uid = next(m.order_uid for m in messages if m.kind == "valid")

    status = ordersctl(settings, "status", "--json", timeout=120)
    assert status.returncode == 0, status.stdout + status.stderr[-2000:]
    redis = next(s for s in json.loads(status.stdout)["services"] if s["name"] == "Redis")
    assert redis["disabled"] is True and redis["address"] == "off"

    warm = ordersctl(settings, "cache", "warm", "--json")
    assert warm.returncode == 0, warm.stderr
    assert json.loads(warm.stdout) == {"warmed": 0, "redis": "disabled"}
    assert "Redis is off" in warm.stderr

    trace = ordersctl(settings, "trace", uid, "--json", timeout=120)
    assert trace.returncode == 0, trace.stdout + trace.stderr[-2000:]
    assert json.loads(trace.stdout)["unread"] == {}

    port = _free_port()
    log = tmp_path / "serve.log"
    proc = start_ordersctl(settings, "serve", "--port", str(port), "--warm-limit", "0", log=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        ready: tuple[int, dict[str, str], bytes] = (0, {}, b"")
        while time.monotonic() < deadline and ready[0] != 200:
            try:
                ready = _get(f"{base}/health/ready")
            except OSError:
                time.sleep(0.3)
        assert ready[0] == 200, log.read_text()[-2000:]
        assert json.loads(ready[2]) == {"status": "ok", "postgres": "up", "redis": "disabled"}
        for expected_layer in ("db", "memory"):
            code, headers, body = _get(f"{base}/orders/{uid}")
            assert code == 200 and json.loads(body)["order_uid"] == uid
            assert headers["X-Cache"] == expected_layer
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0
    assert "redis" not in log.read_text().lower()  # no client, no error, not a word about it
