"""Redis turned off (``redis.url`` empty): serve answers from memory and PostgreSQL without building a Redis
client or logging a Redis error per request, status is healthy, cache warm says there is nothing to warm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.e2e.test_serve import _get, running_serve
from tests.helpers import create_topics, ordersctl, send

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_every_command_runs_without_redis(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": ""})})
    create_topics(settings)
    messages = list(OrderGenerator(seed=5).messages(20))
    send(settings, messages)
    consumed = ordersctl(settings, "consume", "--stop-when-idle", "2", timeout=180)
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    uid = next(m.order_uid for m in messages if m.kind == "valid")

    _commands_without_redis(settings, uid)
    _serve_without_redis(settings, uid, tmp_path / "serve.log")


def _commands_without_redis(settings: Settings, uid: str) -> None:
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


def _serve_without_redis(settings: Settings, uid: str, log: Path) -> None:
    with running_serve(settings, log, "--warm-limit", "0") as base:
        ready = _get(f"{base}/health/ready")
        assert json.loads(ready[2]) == {"status": "ok", "postgres": "up", "redis": "disabled"}
        for expected_layer in ("db", "memory"):
            code, headers, body = _get(f"{base}/orders/{uid}")
            assert code == 200 and json.loads(body)["order_uid"] == uid
            assert headers["X-Cache"] == expected_layer
    assert "redis" not in log.read_text().lower()  # no client, no error, not a word about it
