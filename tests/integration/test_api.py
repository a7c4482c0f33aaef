"""The API with falcon.testing against a Runtime wired to the real PostgreSQL and Redis."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import falcon.testing
import pytest
from pydantic import SecretStr

from ordersctl.api.app import ApiParts, create_app
from ordersctl.api.orders.cursor import CURSOR_PATTERN
from ordersctl.cache.memory import MemoryLRU
from ordersctl.cache.warmup import RecentOrders, warm
from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.order import ORDER_UID_MAX_LENGTH, ORDER_UID_PATTERN
from ordersctl.domain.rules import decode_order
from ordersctl.runtime import Runtime
from tests.helpers import ROOT, store_orders
from tests.metric_conventions import problems
from tests.waiting import wait_for

pytestmark = pytest.mark.integration
STACK = str(ROOT / "scripts" / "stack")
CANONICAL = "b563feb7b2b84b6test"


def _store(settings: Settings, raws: list[bytes]) -> None:
    store_orders(settings.postgres.dsn, [decode_order(r) for r in raws])


@pytest.fixture
def generated() -> list[bytes]:
    return [m.value for m in OrderGenerator(seed=77).messages(45)]


@pytest.fixture
def runtime(settings: Settings, canonical_bytes: bytes, generated: list[bytes]) -> Iterator[Runtime]:
    _store(settings, [canonical_bytes, *generated])  # the same repository code the consumer uses
    rt = Runtime(settings)
    rt.redis.flushdb()
    yield rt
    rt.close()


def _warm(runtime: Runtime, parts: ApiParts, limit: int) -> int:
    """What serve does at start: the most recent orders into the app's Redis layer and memory."""
    recent = RecentOrders(runtime.pg_connection, runtime.store.reads, limit)
    count, _ = warm(parts.cache.redis, recent, memory=parts.cache.memory)
    return count


@pytest.fixture
def api(runtime: Runtime) -> ApiParts:
    parts = create_app(runtime)
    parts.warmed.set()
    return parts


@pytest.fixture
def client(api: ApiParts) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(api.app)


def test_canonical_order_comes_back_json_equal_to_the_fixture(client: Any, canonical_bytes: bytes) -> None:
    first = client.simulate_get(f"/orders/{CANONICAL}")
    assert first.status_code == 200
    assert first.json == json.loads(canonical_bytes)
    assert first.headers["X-Cache"] == "db"
    second = client.simulate_get(f"/orders/{CANONICAL}")
    assert second.headers["X-Cache"] == "memory" and second.json == first.json


def test_redis_layer_answers_when_memory_is_cold(api: ApiParts, client: Any) -> None:
    client.simulate_get(f"/orders/{CANONICAL}")
    api.cache.memory = MemoryLRU(10, 60)
    again = client.simulate_get(f"/orders/{CANONICAL}")
    assert again.headers["X-Cache"] == "redis"


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/orders/nope-not-there", 404, "order not found"),
        ("/orders/" + "x" * 65, 400, "invalid order_uid"),
        ("/orders/bad%20id", 400, "invalid order_uid"),
        ("/orders?limit=0", 400, None),
        ("/orders?limit=101", 400, None),
        ("/orders?limit=abc", 400, None),
        ("/orders?before=!!notacursor", 400, "invalid cursor"),
        ("/orders?before=", 400, "invalid cursor"),
        ("/orders/%C3%A9", 400, "invalid order_uid"),
        ("/no/such/route", 404, None),
    ],
)
def test_errors_are_json_with_the_right_4xx(client: Any, path: str, status: int, error: str | None) -> None:
    url, _, query = path.partition("?")
    result = client.simulate_get(url, query_string=query)
    assert result.status_code == status
    assert set(result.json) == {"error", "detail"}
    if error:
        assert result.json["error"] == error


def test_method_not_allowed_is_json(client: Any) -> None:
    result = client.simulate_post(f"/orders/{CANONICAL}")
    assert result.status_code == 405 and set(result.json) == {"error", "detail"}


def test_recent_orders_keyset_pagination(client: Any, generated: list[bytes]) -> None:
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        params = "limit=7" + (f"&before={cursor}" if cursor else "")
        page = client.simulate_get("/orders", query_string=params).json
        seen += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    uids = [s["order_uid"] for s in seen]
    assert len(uids) == len(set(uids)) == len(generated) + 1
    keys = [(s["date_created"], s["order_uid"]) for s in seen]
    assert keys == sorted(keys, reverse=True)
    assert {"order_uid", "track_number", "date_created", "amount", "currency", "items"} == set(seen[0])
    assert "delivery" not in seen[0]


def test_health_and_metrics(client: Any) -> None:
    assert client.simulate_get("/health/live").json == {"status": "ok"}
    ready = client.simulate_get("/health/ready")
    assert ready.status_code == 200 and ready.json == {"status": "ok", "postgres": "up", "redis": "up"}
    client.simulate_get(f"/orders/{CANONICAL}")
    client.simulate_get(f"/orders/{CANONICAL}")
    metrics = client.simulate_get("/metrics").text
    assert 'ordersctl_http_requests_total{method="GET",route="/orders/{order_uid}",status="200"} 2.0' in metrics
    assert 'ordersctl_order_lookups_total{layer="memory"} 1.0' in metrics
    assert "ordersctl_http_request_duration_seconds_bucket" in metrics
    # One process: its own build info and process metrics, every name by the conventions (several: test_metrics.py).
    assert problems(metrics) == []
    assert "ordersctl_build_info{" in metrics and "\nprocess_resident_memory_bytes " in metrics


def test_ready_is_503_until_warm_up_is_done(runtime: Runtime) -> None:
    parts = create_app(runtime)
    client = falcon.testing.TestClient(parts.app)
    assert client.simulate_get("/health/ready").status_code == 503
    count = _warm(runtime, parts, 10)
    parts.warmed.set()
    assert count == 10
    assert client.simulate_get("/health/ready").status_code == 200


def test_ready_is_503_draining_once_sigterm_came_and_live_stays_200(runtime: Runtime) -> None:
    parts = create_app(runtime)
    parts.warmed.set()
    client = falcon.testing.TestClient(parts.app)
    assert client.simulate_get("/health/ready").status_code == 200
    parts.draining.set()
    ready = client.simulate_get("/health/ready")
    assert ready.status_code == 503 and ready.json == {"status": "draining"}
    assert client.simulate_get("/health/live").status_code == 200  # draining is no reason to restart it


def test_warm_up_loads_the_most_recent_into_both_layers(runtime: Runtime) -> None:
    parts = create_app(runtime)
    count = _warm(runtime, parts, 5)
    client = falcon.testing.TestClient(parts.app)
    recent = client.simulate_get("/orders", query_string="limit=5").json["items"]
    assert count == 5
    for summary in recent:
        assert client.simulate_get(f"/orders/{summary['order_uid']}").headers["X-Cache"] == "memory"
        assert runtime.redis.exists(f"order:{summary['order_uid']}")


def test_bearer_token_guards_orders_only(settings: Settings, runtime: Runtime) -> None:
    rt = Runtime(settings.model_copy(update={"api": settings.api.model_copy(update={"token": SecretStr("s3cret")})}))
    try:
        client = falcon.testing.TestClient(create_app(rt).app)
        denied = client.simulate_get(f"/orders/{CANONICAL}")
        assert denied.status_code == 401 and denied.json["error"] == "unauthorized"
        assert denied.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = client.simulate_get(f"/orders/{CANONICAL}", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert client.simulate_get("/orders", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        ok = client.simulate_get(f"/orders/{CANONICAL}", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        for open_path in ("/health/live", "/openapi.json", "/docs", "/"):
            assert client.simulate_get(open_path).status_code == 200, open_path
    finally:
        rt.close()


def _router_templates(app: Any) -> set[str]:
    """Walk Falcon's compiled router and collect every URI template that has a resource."""
    found: set[str] = set()

    def visit(nodes: list[Any]) -> None:
        for node in nodes:
            if node.resource is not None:
                found.add(node.uri_template)
            visit(node.children)

    visit(app._router._roots)
    return found


def test_every_route_is_in_the_openapi_document(api: ApiParts, client: Any) -> None:
    doc = client.simulate_get("/openapi.json").json
    templates = _router_templates(api.app)
    assert len(templates) >= 9
    for template in templates:
        path = template if template else "/"
        assert path in doc["paths"], f"{path} is routed but not documented"
        assert doc["paths"][path], path
    assert {"Order", "Delivery", "Payment", "Item", "ErrorBody", "OrderPage", "Health"} <= set(
        doc["components"]["schemas"]
    )
    assert doc["openapi"] == "3.0.3"


def test_openapi_declares_the_constraints_the_api_enforces(client: Any) -> None:
    doc = client.simulate_get("/openapi.json").json
    params = doc["components"]["parameters"]
    get_order = doc["paths"]["/orders/{order_uid}"]["get"]
    assert get_order["parameters"] == [{"$ref": "#/components/parameters/OrderUid"}]
    uid = params["OrderUid"]["schema"]
    assert uid == {"type": "string", "minLength": 1, "maxLength": ORDER_UID_MAX_LENGTH, "pattern": ORDER_UID_PATTERN}
    assert doc["components"]["schemas"]["Order"]["properties"]["order_uid"]["pattern"] == ORDER_UID_PATTERN
    list_orders = doc["paths"]["/orders"]["get"]
    assert {"$ref": "#/components/parameters/Cursor"} in list_orders["parameters"]
    assert params["Cursor"]["schema"]["pattern"] == CURSOR_PATTERN
    link = list_orders["responses"]["200"]["links"]["GetFirstOrder"]
    assert link == {"description": link["description"], "operationId": "getOrder",
                    "parameters": {"order_uid": "$response.body#/items/0/order_uid"}}  # fmt: skip
    # The cursor a page hands out is one the document allows.
    cursor = client.simulate_get("/orders", query_string="limit=2").json["next"]
    assert re.fullmatch(CURSOR_PATTERN, cursor)


def test_swagger_ui_and_page_are_served_from_local_files(client: Any) -> None:
    docs = client.simulate_get("/docs")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert "http" not in docs.text.replace("http-equiv", "")  # no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js"):
        assert client.simulate_get(f"/docs/static/{asset}").status_code == 200
    assert client.simulate_get("/docs/static/../../etc/passwd").status_code == 404
    page = client.simulate_get("/")
    assert page.status_code == 200 and "<script" in page.text
    assert "http://" not in page.text and "https://" not in page.text


def test_redis_stopped_during_requests_every_stored_order_still_answers(
    api: ApiParts, client: Any, generated: list[bytes]
) -> None:
    uids = [CANONICAL] + [decode_order(r).order_uid for r in generated[:10]]
    subprocess.run([STACK, "redis-stop"], check=True, timeout=60)
    try:
        for uid in uids:
            api.cache.memory = MemoryLRU(10, 60)  # force the request past memory
            result = client.simulate_get(f"/orders/{uid}")
            assert result.status_code == 200, result.text
            assert result.headers["X-Cache"] == "db"
        ready = client.simulate_get("/health/ready")
        assert ready.status_code == 200 and ready.json["status"] == "degraded"
    finally:
        subprocess.run([STACK, "redis-start"], check=True, timeout=60)
    # The cache comes back by itself once Redis does (after the short back-off of the Redis layer).
    wait_for(lambda: api.cache.redis.available, 10, "the Redis layer's back-off to end", interval=0.05)
    api.cache.memory = MemoryLRU(10, 60)
    client.simulate_get(f"/orders/{uids[1]}")
    api.cache.memory = MemoryLRU(10, 60)
    assert client.simulate_get(f"/orders/{uids[1]}").headers["X-Cache"] == "redis"


@pytest.mark.slow  # each request waits out the pool's timeout (twice connect_timeout) before its 503
def test_postgres_down_gives_503_json_not_500(api: ApiParts, client: Any) -> None:
    subprocess.run([STACK, "pg-stop"], check=True, timeout=60)
    try:
        result = client.simulate_get("/orders/never-cached-uid")
        assert result.status_code == 503 and set(result.json) == {"error", "detail"}
        assert client.simulate_get("/orders").status_code == 503
        ready = client.simulate_get("/health/ready")
        assert ready.status_code == 503 and ready.json["postgres"] == "down"
    finally:
        subprocess.run([STACK, "pg-start"], check=True, timeout=120)
