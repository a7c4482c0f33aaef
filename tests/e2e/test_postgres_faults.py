"""PostgreSQL faults under ingest: a conflicting lock held by another session, and a crash mid-COMMIT."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.helpers import (
    ROOT,
    create_topics,
    db_rows,
    finish,
    read_topic,
    send,
    start_ordersctl,
    stored_count,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]
STACK = str(ROOT / "scripts" / "stack")


def _committed(settings: Settings, partitions: list[int]) -> dict[int, int]:
    """The group's committed offsets, read without joining the group."""
    topic = settings.kafka.orders_topic
    reader = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": settings.kafka.group_id,
                       "enable.auto.commit": False})  # fmt: skip
    try:
        found = reader.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        return {tp.partition: tp.offset for tp in found}
    finally:
        reader.close()


def _stored_uids(dsn: str) -> set[str]:
    return {str(uid) for (uid,) in db_rows(dsn, "SELECT order_uid FROM orders")}


def test_a_lock_held_by_another_session_is_waited_out_by_retries_not_dead_letters(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings, partitions=2)
    messages = list(OrderGenerator(seed=51).messages(300))
    send(settings, messages)
    log = tmp_path / "consume.log"
    with psycopg.connect(settings.postgres.dsn) as holder:
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # held until the rollback below
        proc = start_ordersctl(settings, "consume", "--stop-when-idle", "3", "--json", log=log,
                               ORDERS_POSTGRES__LOCK_TIMEOUT_MS="300")  # fmt: skip
        try:
            wait_for(lambda: "lock timeout" in log.read_text(), 60, "the store to give up waiting on the lock")
            holder.rollback()
            out = finish(proc, log, 120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]
    summary = json.loads(out)
    assert summary["retries"] > 0 and summary["restarts"] == 0
    assert summary["dlq"] == {}, "a lock wait is transient: never dead-lettered"
    assert _stored_uids(settings.postgres.dsn) == {m.order_uid for m in messages}


def test_postgres_crash_mid_ingest_loses_no_committed_order(settings: Settings, tmp_path: Path) -> None:
    """`pg_ctl -m immediate` while batches commit: on the durable profile every order whose offset was committed
    is still stored after recovery, and the run ends with every order stored exactly once."""
    create_topics(settings, partitions=2)
    messages = list(OrderGenerator(seed=52).messages(20_000))
    send(settings, messages)
    log = tmp_path / "consume.log"
    dsn = settings.postgres.dsn
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--batch-size", "200", "--stop-when-idle", "5",
                           "--json", log=log)  # fmt: skip
    try:
        wait_for(lambda: stored_count(dsn) > 3000, 120, "ingest under way")
        subprocess.run([STACK, "pg-crash"], check=True, timeout=60)
        committed_at_crash = _committed(settings, [0, 1])
        time.sleep(2)
        subprocess.run([STACK, "pg-start"], check=True, timeout=180)
        # Everything below an offset committed before the crash must have survived recovery.
        survived = _stored_uids(dsn)
        by_offset = read_topic(settings, settings.kafka.orders_topic, expect=len(messages))
        acknowledged = {
            (m.key() or b"").decode()
            for m in by_offset
            if (m.offset() or 0) < committed_at_crash.get(m.partition() or 0, -1)
        }
        assert acknowledged, "nothing was committed before the crash: the fault came too early"
        lost = acknowledged - survived
        assert not lost, f"{len(lost)} orders with committed offsets are gone after the crash"
        out = finish(proc, log, 240)
    finally:
        subprocess.run([STACK, "pg-start"], check=False, timeout=180)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert json.loads(out)["dlq"] == {}
    assert _stored_uids(dsn) == {m.order_uid for m in messages}
    assert db_rows(dsn, "SELECT count(*) FROM orders") == [(len(messages),)]
