"""The ingest pipeline through faults: a worker killed, PostgreSQL and Kafka down, the events topic unwritable,
SIGTERM. Real Kafka, real PostgreSQL, ordersctl as real processes; nothing lost, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ordersctl.config import Settings
from ordersctl.dlq import format as fmt
from ordersctl.domain.generator import OrderGenerator
from ordersctl.process_name import WORKER_PREFIX
from tests.e2e.ingest import assert_exactly_once, consume_until_idle, valid_messages
from tests.helpers import (
    ROOT,
    children,
    create_topics,
    db_rows,
    finish,
    headers,
    read_topic,
    send,
    start_ordersctl,
    stored_count,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
STACK = str(ROOT / "scripts" / "stack")


def _consume_through_outage(
    settings: Settings, tmp_path: Path, service: str, down_for: float, after: Callable[[], None]
) -> tuple[dict[str, Any], str]:
    """Run ``consume --workers 2`` while ``service`` (pg or kafka) is stopped for ``down_for`` seconds;
    ``after`` runs once it is back. Returns the final summary and the consumer's log."""
    # Idle for longer than the broker takes to come back: a consumer whose partitions were lost in the outage may
    # otherwise find the topic drained and stop before ``after`` sends more (it waits anew from losing them).
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--batch-size", "50", "--stop-when-idle", "20",
                           "--json", log=tmp_path / "consume.log")  # fmt: skip
    try:
        wait_for(lambda: stored_count(settings.postgres.dsn) > 200, 60, "first orders stored")
        subprocess.run([STACK, f"{service}-stop"], check=True, timeout=60)
        time.sleep(down_for)
        subprocess.run([STACK, f"{service}-start"], check=True, timeout=180)
        after()
        out = finish(proc, tmp_path / "consume.log", 200)
    finally:
        subprocess.run([STACK, f"{service}-start"], check=False, timeout=180)
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "consume.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    summary: dict[str, Any] = json.loads(out)
    assert summary["restarts"] == 0, "the consumer must ride out the outage, not be restarted"
    return summary, log


def test_kill_9_of_a_worker_loses_and_duplicates_nothing(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = valid_messages(15_000, seed=21)
    send(settings, messages)
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--batch-size", "100", "--stop-when-idle", "4",
                           "--json", log=tmp_path / "consume.log")  # fmt: skip
    try:
        wait_for(lambda: stored_count(settings.postgres.dsn) > 1500, 120, "the run to be under way")
        # The workers are the children named after them (forked from the zygote; not the zygote itself).
        workers = [p for p in children(proc.pid) if Path(f"/proc/{p}/comm").read_text().startswith(WORKER_PREFIX)]
        assert len(workers) == 2, "expected two worker processes"
        os.kill(workers[-1], signal.SIGKILL)
        out = finish(proc, tmp_path / "consume.log", 200)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (tmp_path / "consume.log").read_text()[-3000:]
    summary = json.loads(out)
    assert summary["restarts"] >= 1
    assert summary["dlq"] == {}
    # The killed worker's counts since its last report died with it: the summary must not pass them off as exact.
    assert summary["counts"] == "estimate"
    assert "(estimate: 1 worker(s) died" in (tmp_path / "consume.log").read_text()
    assert_exactly_once(settings, messages)
    events = read_topic(settings, settings.kafka.events_topic, expect=len(messages))
    assert {(m.key() or b"").decode() for m in events} == {m.order_uid for m in messages}


def test_postgres_outage_is_ridden_out_without_dlq_or_restart(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = valid_messages(3000, seed=31)
    # Orders keep arriving before, during and after the outage.

    def feed() -> None:
        for i in range(0, len(messages), 100):
            send(settings, messages[i : i + 100])
            time.sleep(1)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        summary, log = _consume_through_outage(settings, tmp_path, "pg", 20, lambda: feeder.join(timeout=120))
    finally:
        feeder.join(timeout=120)
    assert summary["retries"] > 0, "the outage was not noticed: did PostgreSQL really stop?"
    assert summary["dlq"] == {}
    assert "transient failure, retrying" in log
    assert_exactly_once(settings, messages)


def test_events_of_orders_stored_while_events_topic_unwritable_are_published_later(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings, events=False)  # the events topic does not exist yet: Kafka refuses the writes
    messages = valid_messages(50, seed=41)
    send(settings, messages)
    proc = start_ordersctl(settings, "consume", log=tmp_path / "consume.log",
                           ORDERS_KAFKA__EXTRA='{"topic.metadata.propagation.max.ms": "2000"}')  # fmt: skip
    dsn = settings.postgres.dsn
    try:
        wait_for(lambda: stored_count(dsn) == 50, 60, "orders stored")
        time.sleep(3)
        assert db_rows(dsn, "SELECT count(*) FROM outbox") == [(50,)]
        create_topics(settings)  # the events topic can be written from now on
        wait_for(
            lambda: db_rows(dsn, "SELECT count(*) FROM outbox") == [(0,)],
            90,
            "the outbox to drain",
        )
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    events = read_topic(settings, settings.kafka.events_topic, expect=50)
    assert {(m.key() or b"").decode() for m in events} == {m.order_uid for m in messages}


def test_sigterm_exits_0_within_10s_and_loses_nothing(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = valid_messages(15_000, seed=51)
    send(settings, messages)
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--batch-size", "100",
                           log=tmp_path / "consume.log")  # fmt: skip
    try:
        wait_for(lambda: stored_count(settings.postgres.dsn) > 1000, 120, "the run to be under way")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (tmp_path / "consume.log").read_text()[-3000:]
    assert took < 10, f"shutdown took {took:.1f}s"
    # A second run picks up from the committed offsets; together nothing is lost or stored twice.
    summary = consume_until_idle(settings, "--workers", "2")
    assert summary["dlq"] == {}
    assert_exactly_once(settings, messages)


def test_kafka_outage_is_ridden_out_without_restart(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = valid_messages(3000, seed=61)
    invalid = list(OrderGenerator(seed=62).messages(200, invalid_ratio=1.0))
    send(settings, messages[:1500] + invalid[:100])
    # More orders (and poison) after the broker is back.
    _consume_through_outage(settings, tmp_path, "kafka", 10, lambda: send(settings, messages[1500:] + invalid[100:]))
    assert_exactly_once(settings, messages)
    poison = Counter((m.key.decode(), m.kind) for m in invalid)
    dead = read_topic(settings, settings.kafka.dlq_topic, expect=len(invalid))
    assert Counter(((m.key() or b"").decode(), headers(m)[fmt.REASON]) for m in dead) >= poison
    events = read_topic(settings, settings.kafka.events_topic, expect=len(messages))
    assert {(m.key() or b"").decode() for m in events} == {m.order_uid for m in messages}
