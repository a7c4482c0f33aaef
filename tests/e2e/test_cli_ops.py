"""Operational commands as real processes against the real stack: topics, produce --file, cache warm."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rules import decode_order
from tests.helpers import ROOT, log_messages, ordersctl, read_topic, store_orders

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_topics_create_is_idempotent_and_keeps_the_dlq_wide_enough(settings: Settings) -> None:
    first = ordersctl(settings, "topics", "create", "--partitions", "6")
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("created") == 2
    # Later the DLQ is asked for with fewer partitions: it still gets as many as the orders topic has.
    again = ordersctl(settings, "topics", "create", "--dlq", "--partitions", "2")
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("exists") == 2 and again.stderr.count("created") == 1
    listed = json.loads(ordersctl(settings, "topics", "list", "--json").stdout)
    counts = {t["topic"]: t["partitions"] for t in listed}
    assert counts[settings.kafka.dlq_topic] == 6
    wider = ordersctl(settings, "topics", "create", "--partitions", "8")
    assert wider.returncode == 1 and "fewer than the 8" in wider.stderr


def test_migrate_twice_says_up_to_date(settings: Settings) -> None:
    again = ordersctl(settings, "db", "migrate")
    assert again.returncode == 0 and "up to date" in again.stderr and "applied" not in again.stderr
    status = json.loads(ordersctl(settings, "db", "migrate", "--status", "--json").stdout)
    versions = [m["version"] for m in status["migrations"]]
    assert versions == sorted(versions) and len(versions) == len(list((ROOT / "sql").glob("*.sql")))
    assert all(m["applied"] for m in status["migrations"])


def test_produce_file_sends_the_lines_as_they_are(settings: Settings, canonical_bytes: bytes, tmp_path: Path) -> None:
    assert ordersctl(settings, "topics", "create", "--partitions", "1").returncode == 0
    lines = [json.dumps(json.loads(canonical_bytes)).encode(), b"{not json", b'{"order_uid": "x-1"}']
    path = tmp_path / "orders.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n\n")
    result = ordersctl(settings, "produce", "--file", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 3
    got = read_topic(settings, settings.kafka.orders_topic, expect=3)
    assert [m.value() for m in got] == lines
    assert [m.key() for m in got] == [b"b563feb7b2b84b6test", None, b"x-1"]


def test_produce_rejects_bad_ratios_with_exit_2(settings: Settings) -> None:
    result = ordersctl(settings, "produce", "--invalid-ratio", "1.5")
    assert result.returncode == 2 and result.stderr.count("\n") == 1


def test_cache_warm_fills_redis(settings: Settings) -> None:
    orders = [decode_order(m.value) for m in OrderGenerator(seed=8).messages(30)]
    store_orders(settings.postgres.dsn, orders)
    client = redis.Redis.from_url(settings.redis.url, decode_responses=True)
    client.flushdb()
    some = ordersctl(settings, "cache", "warm", "--limit", "10", "--json")
    assert some.returncode == 0, some.stderr
    assert json.loads(some.stdout)["warmed"] == 10
    newest = sorted(orders, key=lambda o: (o.date_created, o.order_uid), reverse=True)[:10]
    assert set(client.keys("order:*")) == {f"order:{o.order_uid}" for o in newest}
    assert json.loads(client.get(f"order:{newest[0].order_uid}") or "") == newest[0].model_dump(mode="json")
    everything = ordersctl(settings, "cache", "warm", "--all", "--json")
    assert json.loads(everything.stdout)["warmed"] == 30
    assert len(client.keys("order:*")) == 30
    assert "orders into Redis" in everything.stderr


def test_cache_warm_with_redis_down_names_it_and_exits_1(settings: Settings) -> None:
    result = ordersctl(settings, "cache", "warm", ORDERS_REDIS__URL="redis://:pw@127.0.0.1:2/0")
    assert result.returncode == 1
    assert log_messages(result.stderr)[-1] == "ordersctl: error: Redis unreachable at :***@127.0.0.1:2/0"
