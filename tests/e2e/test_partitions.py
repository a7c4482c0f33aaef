"""A partition (packets dropped both ways, no reset) between ordersctl and PostgreSQL, Kafka or Redis, under load:
nothing lost; stores resume within the liveness bound + 5 s of healing; serve answers every read from its caches or
with a 503, within its timeouts, never hanging.

The partition drops the ports of the stack the tests point at (ORDERS_TEST_*) on loopback, in an nftables table of
its own deleted at the end: run it on a stack no one else uses meanwhile (CI runs tests one at a time)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from confluent_kafka import Producer

from chaos.partitions import Partitions
from chaos.stall import STALL_BOUND_SECONDS
from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.e2e.test_serve import running_serve
from tests.helpers import create_topics, db_rows, finish, start_ordersctl, stored_count, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
PARTITION_SECONDS = float(os.environ.get("ORDERS_TEST_PARTITION_SECONDS", "60"))
RATE = 100  # orders a second, all along
READ_TIMEOUT = 15.0  # a reader's patience: serve must answer well within it


@dataclass
class Load:
    """Orders produced at a steady rate, and reads of stored ones through serve, until ``stop``."""

    settings: Settings
    base: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: list[str] = field(default_factory=list)
    reads: list[tuple[float, int, float]] = field(default_factory=list)  # (start, status, seconds)

    def produce(self) -> None:
        producer = Producer({"bootstrap.servers": self.settings.kafka.bootstrap_servers, "enable.idempotence": True,
                             "acks": "all", "linger.ms": 5})  # fmt: skip
        started = time.monotonic()
        for n, message in enumerate(OrderGenerator(seed=2501).messages(10**6)):
            if self.stop.is_set():
                break
            time.sleep(max(0.0, started + n / RATE - time.monotonic()))
            producer.produce(self.settings.kafka.orders_topic, key=message.key, value=message.value)
            producer.poll(0)
            self.sent.append(message.order_uid)
        assert producer.flush(120) == 0, "orders left unsent"

    def read(self) -> None:
        """Reads of stored orders, older ones (cached by now) and the latest (not yet)."""
        rng = random.Random(7)
        stored: list[str] = []
        while not self.stop.is_set():
            with (
                contextlib.suppress(psycopg.OperationalError),  # cut off too: read the ones known so far
                psycopg.connect(self.settings.postgres.dsn, connect_timeout=2) as conn,
            ):
                stored = [str(uid) for (uid,) in conn.execute("SELECT order_uid FROM orders ORDER BY stored_at")]
            for uid in rng.sample(stored, min(10, len(stored))) + stored[-10:]:
                started = time.monotonic()
                try:
                    with urllib.request.urlopen(f"{self.base}/orders/{uid}", timeout=READ_TIMEOUT) as answer:  # noqa: S310
                        status = answer.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except OSError:
                    status = 0  # no answer at all
                self.reads.append((started, status, time.monotonic() - started))
                time.sleep(0.05)

    def read_while_cut(self, partitions: Partitions, name: str, ports: list[int]) -> tuple[float, float]:
        """Partition ``ports`` for PARTITION_SECONDS; the (start, end) of the partition."""
        cut = time.monotonic()
        partitions.drop_ports(name, ports)
        time.sleep(PARTITION_SECONDS)
        partitions.heal(name)
        return cut, time.monotonic()


def _ports(settings: Settings, service: str) -> list[int]:
    if service == "postgres":
        return [int(psycopg.conninfo.conninfo_to_dict(settings.postgres.dsn)["port"] or 5432)]
    if service == "redis":
        return [urlsplit(settings.redis.url).port or 6379]
    return [int(address.rsplit(":", 1)[1]) for address in settings.kafka.bootstrap_servers.split(",")]


@pytest.fixture
def partitions() -> Iterator[Partitions]:
    cut = Partitions()
    cut.open()
    try:
        yield cut
    finally:
        cut.close()


def _stall_after(settings: Settings, healed: float, timeout: float = 120) -> float:
    """Seconds from ``healed`` until the stored count grows again."""
    at_heal = stored_count(settings.postgres.dsn)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stored_count(settings.postgres.dsn) > at_heal:
            return time.monotonic() - healed
        time.sleep(0.25)
    raise AssertionError(f"stores did not resume within {timeout:.0f} s of healing")


@pytest.mark.parametrize("service", ["postgres", "kafka", "redis"])
def test_a_partition_under_load_loses_nothing_and_stores_resume_within_the_bound(
    service: str, settings: Settings, partitions: Partitions, tmp_path: Path
) -> None:
    create_topics(settings, partitions=2)
    consume = start_ordersctl(settings, "consume", "--workers", "2", log=tmp_path / "consume.log")
    with running_serve(settings, tmp_path / "serve.log", failures_logged=True) as base:
        load = Load(settings, base)
        threads = [threading.Thread(target=fn, daemon=True) for fn in (load.produce, load.read)]
        threads[0].start()
        wait_for(lambda: stored_count(settings.postgres.dsn) > 200, 60, "stores to flow")
        threads[1].start()
        time.sleep(2)
        cut, healed = load.read_while_cut(partitions, service, _ports(settings, service))
        stall = _stall_after(settings, healed)
        time.sleep(3)
        load.stop.set()
        for thread in threads:
            thread.join(180)
    wait_for(lambda: stored_count(settings.postgres.dsn) >= len(load.sent), 120, "every order stored")
    consume.terminate()
    finish(consume, tmp_path / "consume.log", 60)
    stored = {uid for (uid,) in db_rows(settings.postgres.dsn, "SELECT order_uid FROM orders")}
    during = [(status, seconds) for started, status, seconds in load.reads if cut <= started <= healed]
    slowest = max((seconds for _, seconds in during), default=0.0)
    figures = {"service": service, "partition_s": round(healed - cut, 1), "stall_s": round(stall, 1),
               "sent": len(load.sent), "stored": len(stored), "reads_during": len(during),
               "statuses": sorted({s for s, _ in during}), "slowest_read_s": round(slowest, 2)}  # fmt: skip
    print(json.dumps(figures))
    assert stored == set(load.sent), "lost or extra orders"
    assert stall <= STALL_BOUND_SECONDS, figures
    assert during and all(status in (200, 503) for status, _ in during), figures
    assert all(seconds < READ_TIMEOUT for _, seconds in during), figures
    if service != "postgres":
        assert {status for status, _ in during} == {200}, figures
