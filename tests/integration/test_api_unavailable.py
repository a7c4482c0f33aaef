"""The API with its PostgreSQL unreachable: a real connection refused on a closed port of 127.0.0.1, so the
shared stack is never stopped. The client learns which dependency is down and nothing about it; the
operator finds the address, the driver's message and the traceback in the log."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest

from ordersctl.api.app import create_app
from ordersctl.config import load_settings
from ordersctl.logs import JsonFormatter
from ordersctl.runtime import Runtime
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.integration
DBNAME = "orders_secret_name"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening, and held so nothing else takes it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def runtime(services: None, closed_port: int) -> Iterator[Runtime]:
    settings = load_settings(
        overrides={
            "postgres": {"dsn": f"postgresql://ordersctl:ordersctl@127.0.0.1:{closed_port}/{DBNAME}",
                         "connect_timeout": 1},
            "redis": {"url": REDIS_URL},
        }
    )  # fmt: skip
    rt = Runtime(settings)
    yield rt
    rt.close()


def _traceback(record: logging.LogRecord) -> str:
    return str(JsonFormatter().format(record))


def _logged(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == logger]


def test_503_body_names_the_dependency_and_nothing_about_it(
    runtime: Runtime, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    client = falcon.testing.TestClient(create_app(runtime).app)
    caplog.set_level(logging.WARNING, logger="ordersctl.api")
    for path in ("/orders/never-cached-uid", "/orders"):
        result: Any = client.simulate_get(path)
        assert result.status_code == 503, result.text
        assert result.json == {"error": "unavailable", "detail": "postgres"}
        for leak in ("127.0.0.1", str(closed_port), DBNAME, "ordersctl:", "PostgreSQL", "connection", "refused",
                     "timeout", "sec"):  # fmt: skip
            assert leak.lower() not in result.text.lower(), leak
    # The details are in the log, with the traceback; once for both requests (the same outage).
    logged = _logged(caplog, "ordersctl.api.failures")
    assert len(logged) == 1
    assert logged[0].dependency == "postgres" and logged[0].exc_info is not None  # type: ignore[attr-defined]
    line = _traceback(logged[0])
    assert "Traceback (most recent call last)" in line and f"127.0.0.1:{closed_port}/{DBNAME}" in line
    assert "ordersctl:ordersctl" not in line, "never the password"


def test_readiness_failure_is_logged_with_its_traceback_rate_limited(
    runtime: Runtime, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    parts = create_app(runtime)
    parts.warmed.set()
    client = falcon.testing.TestClient(parts.app)
    caplog.set_level(logging.WARNING, logger="ordersctl.api")
    for _ in range(2):
        ready: Any = client.simulate_get("/health/ready")
        assert ready.status_code == 503 and ready.json["postgres"] == "down"
    logged = _logged(caplog, "ordersctl.api.health")
    assert len(logged) == 1, "one line per outage window, not one per probe"
    assert logged[0].dependency == "postgres"  # type: ignore[attr-defined]
    line = _traceback(logged[0])
    assert "Traceback (most recent call last)" in line and f"127.0.0.1:{closed_port}/{DBNAME}" in line


def test_a_read_answers_503_within_the_api_wait_not_the_pools(services: None, closed_port: int) -> None:
    """Found by the chaos harness: during a PostgreSQL crash a read waited out the pool's timeout (twice the
    connect timeout, 10 s by default), longer than its client waited, so the client got no answer at all."""
    import time

    settings = load_settings(
        overrides={
            "postgres": {"dsn": f"postgresql://ordersctl:ordersctl@127.0.0.1:{closed_port}/{DBNAME}"},
            "redis": {"url": REDIS_URL},
            "api": {"db_wait_seconds": 1.0},
        }
    )  # the default connect timeout (5 s): the pool alone would wait 10 s
    rt = Runtime(settings)
    try:
        client = falcon.testing.TestClient(create_app(rt).app)
        for path in ("/orders/nosuchorder", "/orders"):
            started = time.monotonic()
            answer = client.simulate_get(path)
            waited = time.monotonic() - started
            assert answer.status_code == 503 and answer.json == {"error": "unavailable", "detail": "postgres"}
            assert waited < 5, f"{path} answered after {waited:.1f} s: the pool's wait, not api.db_wait_seconds"
    finally:
        rt.close()
