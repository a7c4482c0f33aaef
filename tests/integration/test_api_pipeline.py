"""``/pipeline/status`` and ``/pipeline/dead-letters`` through falcon.testing, on the real stack: the API token,
the shape the document declares, one read shared by the requests of a moment, and Kafka and Redis "down" on
closed ports of 127.0.0.1 (the shared stack is never stopped)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import falcon.testing
import pytest
from pydantic import SecretStr

from ordersctl.api.app import create_app
from ordersctl.api.dashboard.schemas import DeadLettersOut, PipelineStatusOut
from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.runtime import Runtime
from tests.helpers import create_topics, send

pytestmark = pytest.mark.integration
TOKEN = "pipeline-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound, never listening, and held so nothing else takes it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@contextmanager
def _client(settings: Settings) -> Iterator[Any]:
    rt = Runtime(settings)
    try:
        yield falcon.testing.TestClient(create_app(rt).app)
    finally:
        rt.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[Any]:
    create_topics(settings)
    send(settings, list(OrderGenerator(seed=21).messages(12)))
    with _client(settings.model_copy(update={"api": settings.api.model_copy(update={"token": SecretStr(TOKEN)})})) as c:
        yield c


def test_the_token_is_required_and_the_bodies_match_the_document(client: Any) -> None:
    for path in ("/pipeline/status", "/pipeline/dead-letters"):
        refused = client.simulate_get(path)
        assert refused.status_code == 401 and refused.json["error"] == "unauthorized", refused.text
    status = client.simulate_get("/pipeline/status", headers=AUTH)
    assert status.status_code == 200 and status.headers["cache-control"] == "no-store"
    doc = PipelineStatusOut.model_validate(status.json)
    assert doc.orders is not None and doc.orders.total_lag == 12  # no consumer ran: the whole topic is left
    assert doc.unread == [] and [s.up for s in doc.services] == [True, True, True]
    assert doc.stored_orders is not None and doc.outbox is not None and doc.outbox.pending == 0
    dead = DeadLettersOut.model_validate(client.simulate_get("/pipeline/dead-letters", headers=AUTH).json)
    assert dead.kafka == "up" and dead.items == [] and dead.unread == []
    assert client.simulate_get("/static/pipeline.js").status_code == 200, "the page's files need no token"
    assert client.simulate_get("/static/nothing.js").status_code == 404


def test_requests_of_the_same_moment_share_one_read(client: Any) -> None:
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _: client.simulate_get("/pipeline/status", headers=AUTH).text, range(16)))
    # checked_at is taken at the start of each read, to the millisecond: one value, one read.
    assert len(set(bodies)) == 1


@pytest.mark.slow  # a broker that does not answer is waited for (3 s, twice: status and dead letters)
def test_kafka_and_redis_down_are_shown_down_never_a_500(settings: Settings, closed_port: int) -> None:
    down = settings.model_copy(update={
        "kafka": settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{closed_port}"}),
        "redis": settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{closed_port}/0"}),
    })  # fmt: skip
    with _client(down) as client:
        status = client.simulate_get("/pipeline/status")
        dead = client.simulate_get("/pipeline/dead-letters")
    assert status.status_code == 200 and dead.status_code == 200
    doc = PipelineStatusOut.model_validate(status.json)
    assert [(s.name, s.up) for s in doc.services] == [("PostgreSQL", True), ("Redis", False), ("Kafka", False)]
    assert doc.orders is None and doc.dlq is None and doc.unread == ["dlq", "orders"]
    assert doc.outbox is not None and doc.stored_orders is not None, "PostgreSQL's sections are still read"
    assert doc.problems == ["Redis down", "Kafka down", "orders not read", "dlq not read"]
    assert DeadLettersOut.model_validate(dead.json).model_dump(include={"kafka", "items"}) == {
        "kafka": "down", "items": None}  # fmt: skip
    for leak in ("127.0.0.1", str(closed_port), "Error", "refused", "Transport"):
        assert leak not in status.text + dead.text, leak
