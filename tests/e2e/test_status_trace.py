"""``ordersctl status`` and ``ordersctl trace`` against the real stack, with data put in by ``consume``."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from ordersctl.config import Settings
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.generator import OrderGenerator, dump
from ordersctl.observe.sources import Sources
from ordersctl.observe.status import PipelineStatus, Thresholds, read_status
from ordersctl.runtime import Runtime
from tests.helpers import create_topics, finish, ordersctl, read_topic, send, start_ordersctl, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def _consume(settings: Settings) -> dict[str, Any]:
    result = ordersctl(settings, "consume", "--stop-when-idle", "2", "--json", timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def _json(settings: Settings, *args: str) -> tuple[int, dict[str, Any]]:
    result = ordersctl(settings, *args, "--json", timeout=120)
    assert result.stdout.count("\n") == 1, result.stdout + result.stderr[-3000:]
    doc: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, doc


def _valid(count: int, seed: int) -> list[Generated]:
    return list(OrderGenerator(seed=seed).messages(count))


def _assert_idle(doc: dict[str, Any], settings: Settings, orders_sent: int) -> None:
    assert doc["healthy"] is True and doc["problems"] == [] and doc["unread"] == {}
    assert [(s["name"], s["up"]) for s in doc["services"]] == [("PostgreSQL", True), ("Redis", True), ("Kafka", True)]
    assert all(s["rtt_ms"] >= 0 for s in doc["services"])
    orders = doc["orders"]
    assert orders["total_lag"] == 0
    assert sum(p["end"] for p in orders["partitions"]) == orders_sent
    assert all(p["committed"] == p["end"] and p["lag"] == 0 for p in orders["partitions"])
    assert orders["group"] == {"group_id": settings.kafka.group_id, "state": "empty", "members": []}  # consume exited
    assert doc["dlq"]["in_window"] == 0 and doc["dlq"]["retained"] == 0
    assert doc["outbox"] == {"pending": 0, "oldest_age_seconds": None}


def _watch_twice(settings: Settings, log: Path) -> tuple[list[dict[str, Any]], int | None]:
    """Two refreshes of ``status --watch --json``, then Ctrl-C: (the refreshes, its exit code)."""
    watch = start_ordersctl(settings, "status", "--watch", "0.5", "--json", log=log)
    try:
        assert watch.stdout is not None
        refreshes = [json.loads(watch.stdout.readline()) for _ in range(2)]
        watch.send_signal(signal.SIGINT)
        watch.wait(timeout=30)
    finally:
        if watch.poll() is None:
            watch.kill()
    return refreshes, watch.returncode


def test_status_on_an_idle_pipeline_is_healthy_with_lag_0(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    send(settings, _valid(40, seed=61))
    _consume(settings)

    code, doc = _json(settings, "status", "--max-lag", "0")
    assert code == 0, doc["problems"]
    _assert_idle(doc, settings, 40)

    table = ordersctl(settings, "status")
    assert table.returncode == 0, table.stderr[-3000:]
    assert settings.kafka.orders_topic in table.stdout and "status: healthy (exit 0)" in table.stdout

    # --watch --json: one object a refresh; interrupted, it exits with the last status's code.
    refreshes, watch_code = _watch_twice(settings, tmp_path / "watch.log")
    assert [r["exit_code"] for r in refreshes] == [0, 0]
    assert refreshes[0]["checked_at"] < refreshes[1]["checked_at"]
    assert watch_code == 0, (tmp_path / "watch.log").read_text()[-3000:]


def test_status_with_a_backlog_and_nobody_consuming_exits_1_saying_why(settings: Settings) -> None:
    # A backlog in an empty group is a pipeline that has stopped, whatever --max-lag says (exit 1 beats 4).
    create_topics(settings)
    send(settings, _valid(30, seed=62))

    code, doc = _json(settings, "status", "--max-lag", "10")
    assert code == 1, doc["problems"]
    assert doc["orders"]["total_lag"] == 30 and doc["orders"]["group"]["members"] == []
    assert all(p["committed"] is None for p in doc["orders"]["partitions"]), "the group never committed"
    assert doc["problems"] == [f"group {settings.kafka.group_id} has no members and lag 30: nothing consumes",
                               "lag 30 is above --max-lag 10"]  # fmt: skip
    assert doc["stall"]["no_members"] is True and doc["healthy"] is False
    assert _json(settings, "status", "--max-lag", "30")[0] == 1
    assert _json(settings, "status")[0] == 1, "without --max-lag too: nothing consumes"

    _consume(settings)
    code, doc = _json(settings, "status", "--max-lag", "10")
    assert (code, doc["orders"]["total_lag"]) == (0, 0)


def test_status_shows_the_members_of_a_running_group(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    send(settings, _valid(20, seed=63))
    proc = start_ordersctl(settings, "consume", "--workers", "2", log=tmp_path / "consume.log")
    rt = Runtime(settings)
    try:
        src = Sources.from_runtime(rt)
        since = datetime.now(UTC) - timedelta(hours=1)
        seen: list[PipelineStatus] = []

        def settled() -> bool:
            seen.append(read_status(src, since, Thresholds(max_lag=0)))
            orders = seen[-1].orders
            return orders is not None and orders.group.state == "stable" and len(orders.group.members) == 2 \
                and orders.total_lag == 0  # fmt: skip

        wait_for(settled, 90, "two members in a stable group with every order committed")
        assert seen[-1].exit_code() == 0, seen[-1].problems()
        members = seen[-1].as_json()["orders"]["group"]["members"]
        assert all(m["client_id"] and m["host"] for m in members)
        assert sorted(p for m in members for p in m["partitions"]) == [0, 1, 2, 3]
        proc.send_signal(signal.SIGTERM)
        finish(proc, tmp_path / "consume.log", 60)
    finally:
        rt.close()
        if proc.poll() is None:
            proc.kill()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis of this test alone, on a free port, without persistence: the test may stop it."""
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=(tmp_path / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_for(lambda: _answers(url), 20, f"the private redis on port {port}")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=20)


def _assert_redis_down(doc: dict[str, Any], address: str) -> None:
    services = {s["name"]: s for s in doc["services"]}
    assert services["Redis"]["up"] is False and services["Redis"]["error"]
    assert services["Redis"]["address"] == address
    assert services["PostgreSQL"]["up"] and services["Kafka"]["up"]
    assert doc["orders"] is not None and doc["outbox"] is not None, "what does not need Redis is still read"
    assert doc["problems"][0].startswith(f"Redis down at {address}")


def test_status_with_redis_stopped_shows_it_down_and_exits_6_degraded(
    settings: Settings, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    url, server = private_redis
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": url})})
    create_topics(settings)
    code, doc = _json(settings, "status")
    assert code == 0, doc["problems"]

    server.terminate()
    server.wait(timeout=20)
    code, doc = _json(settings, "status")
    assert code == 6  # degraded: serve answers without Redis, the pipeline does not need it
    _assert_redis_down(doc, url.removeprefix("redis://"))

    table = ordersctl(settings, "status")
    assert table.returncode == 6
    assert "down" in table.stdout and "status: degraded (exit 6)" in table.stdout
    assert "Traceback" not in table.stderr


def _messages(stored: dict[str, Any], poison: dict[str, Any], original: dict[str, Any]) -> list[Generated]:
    """A valid order, a dead-lettered one, and a valid one followed by a conflicting copy."""
    poison["payment"]["amount"] += 1  # breaks the totals rule: dead-lettered as rule_violation
    conflicting = json.loads(json.dumps(original))
    conflicting["payment"]["custom_fee"] += 10
    conflicting["payment"]["amount"] += 10
    return [
        Generated(stored["order_uid"].encode(), dump(stored), "valid", stored["order_uid"]),
        Generated(poison["order_uid"].encode(), dump(poison), "rule_violation", poison["order_uid"]),
        Generated(original["order_uid"].encode(), dump(original), "valid", original["order_uid"]),
        Generated(original["order_uid"].encode(), dump(conflicting), "conflict", original["order_uid"]),
    ]


def _trace_cached(settings: Settings, uid: str) -> tuple[int, dict[str, Any]]:
    """Trace with the order in Redis, as serve or cache warm would have put it."""
    cache = redis.Redis.from_url(settings.redis.url)
    cache.set(f"order:{uid}", b"{}", ex=600)
    try:
        return _json(settings, "trace", uid)
    finally:
        cache.delete(f"order:{uid}")


def _assert_stored(doc: dict[str, Any], order: dict[str, Any], partition: int | None) -> None:
    assert doc["verdict"] == "stored" and doc["unread"] == {}
    assert doc["orders"]["partition"] == partition, "the partition the producer chose"
    assert all(r["committed"] for r in doc["orders"]["records"])
    assert doc["postgres"]["stored"] is True and doc["postgres"]["items"] == len(order["items"])
    assert doc["postgres"]["fingerprint"] == hashlib.sha256(dump(order)).hexdigest()
    assert doc["event"]["state"] == "published" and doc["event"]["published"][0]["event_id"].isdigit()


def _assert_only_dead_lettered(doc: dict[str, Any], reason: str) -> None:
    assert doc["verdict"] == "dead_lettered"
    assert [(d["reason"], d["replay_count"]) for d in doc["dead_letters"]] == [(reason, 0)]
    assert doc["postgres"]["stored"] is False and doc["event"] is None and doc["redis"]["cached"] is False
    assert [r["committed"] for r in doc["orders"]["records"]] == [True]


def _assert_nowhere(doc: dict[str, Any]) -> None:
    assert doc["verdict"] == "not_found" and doc["unread"] == {}
    assert doc["orders"]["records"] == [] and doc["dead_letters"] == [] and doc["postgres"]["stored"] is False


def _assert_no_personal_data(settings: Settings, orders: list[dict[str, Any]]) -> None:
    for order in orders:
        shown = ordersctl(settings, "trace", order["order_uid"])
        shown_json = ordersctl(settings, "trace", order["order_uid"], "--json")
        everything = shown.stdout + shown.stderr + shown_json.stdout + shown_json.stderr
        for personal in (order["delivery"]["name"], order["delivery"]["phone"], order["delivery"]["email"]):
            assert personal not in everything


def test_trace_follows_stored_dead_lettered_conflicting_and_unknown_orders(
    settings: Settings, private_redis: tuple[str, subprocess.Popen[bytes]]
) -> None:
    # A Redis of its own: other tests flush the shared test database, and with it the entry trace looks for.
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(update={"url": private_redis[0]})})
    create_topics(settings)
    gen = OrderGenerator(seed=64)
    stored, poison, original = gen.order(items=3), gen.order(), gen.order()
    send(settings, _messages(stored, poison, original))
    summary = _consume(settings)
    assert summary["stored"] == 2 and summary["dlq"] == {"rule_violation": 1, "conflict": 1}
    landed = {(m.key() or b"").decode(): m.partition() for m in read_topic(settings, settings.kafka.orders_topic, 4)}

    code, doc = _trace_cached(settings, stored["order_uid"])
    assert code == 0
    _assert_stored(doc, stored, landed[stored["order_uid"]])
    assert len(doc["orders"]["records"]) == 1 and doc["dead_letters"] == []
    assert doc["redis"]["cached"] is True and 0 < doc["redis"]["ttl_seconds"] <= 600

    code, doc = _json(settings, "trace", poison["order_uid"])
    assert code == 5
    _assert_only_dead_lettered(doc, "rule_violation")

    code, doc = _json(settings, "trace", original["order_uid"])
    assert code == 0, "a conflicting duplicate leaves the first one stored"
    _assert_stored(doc, original, landed[original["order_uid"]])
    assert len(doc["orders"]["records"]) == 2 and [d["reason"] for d in doc["dead_letters"]] == ["conflict"]

    code, doc = _json(settings, "trace", "no-such-order-0001")
    assert code == 1
    _assert_nowhere(doc)

    table = ordersctl(settings, "trace", poison["order_uid"])
    assert table.returncode == 5 and "rule_violation" in table.stdout
    assert f"trace {poison['order_uid']}: dead_lettered (exit 5)" in table.stdout
    _assert_no_personal_data(settings, [stored, poison, original])
