"""The ingest pipeline end to end: real Kafka, real PostgreSQL, ordersctl as real processes."""

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

import psycopg
import pytest

from ordersctl.config import Settings
from ordersctl.dlq import format as fmt
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rules import decode_order
from ordersctl.errors import POISON_REASONS
from tests.helpers import (
    ROOT,
    children,
    create_topics,
    db_rows,
    finish,
    headers,
    order_store,
    ordersctl,
    read_topic,
    send,
    start_ordersctl,
    stored_count,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
STACK = str(ROOT / "scripts" / "stack")


def _expected(messages: list[Generated]) -> tuple[dict[str, bytes], Counter[tuple[str, str]]]:
    valid = {m.order_uid: m.value for m in messages if m.kind == "valid"}
    poison = Counter((m.key.decode(), m.kind) for m in messages if m.kind in POISON_REASONS)
    return valid, poison


def _consume_until_idle(settings: Settings, *args: str, timeout: float = 240) -> dict[str, object]:
    result = ordersctl(settings, "consume", "--stop-when-idle", "3", "--json", *args, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def _stored_orders(dsn: str, uids: list[str]) -> dict[str, dict[str, object]]:
    with psycopg.connect(dsn) as conn:
        return {o.order_uid: o.model_dump(mode="json") for o in order_store().reads.get_many(conn, uids)}


def test_seeded_mix_lands_exactly_where_it_belongs(settings: Settings) -> None:
    create_topics(settings)
    messages = list(OrderGenerator(seed=11).messages(600, invalid_ratio=0.1, duplicate_ratio=0.05))
    valid, poison = _expected(messages)
    assert len(poison) >= 5 and {k for _, k in poison} == {"decode_error", "invalid_json", "schema_violation",
                                                             "rule_violation", "conflict"}  # fmt: skip
    send(settings, messages)

    summary = _consume_until_idle(settings, "--workers", "2")

    # The database holds exactly the valid set, field by field.
    dsn = settings.postgres.dsn
    assert stored_count(dsn) == len(valid)
    stored = _stored_orders(dsn, list(valid))
    assert stored == {uid: decode_order(raw).model_dump(mode="json") for uid, raw in valid.items()}
    # The DLQ holds exactly the invalid ones, with their original bytes and the right reason codes.
    dead = read_topic(settings, settings.kafka.dlq_topic, expect=sum(poison.values()))
    assert Counter(((m.key() or b"").decode(), headers(m)[fmt.REASON]) for m in dead) == poison
    originals = {(m.key, m.value) for m in messages if m.kind in POISON_REASONS}
    assert {(m.key(), m.value()) for m in dead} == originals
    for m in dead:
        h = headers(m)
        assert h[fmt.ORIGINAL_TOPIC] == settings.kafka.orders_topic == h[fmt.CONNECT_TOPIC]
        assert h[fmt.ORIGINAL_OFFSET] == h[fmt.CONNECT_OFFSET] and int(h[fmt.ORIGINAL_OFFSET]) >= 0
        assert h[fmt.CONSUMER_GROUP] == settings.kafka.group_id
        assert h[fmt.CONNECT_EXCEPTION_CLASS].startswith("ordersctl.errors.")
        assert h[fmt.FAILED_AT].endswith("Z") and h[fmt.ATTEMPTS] == "1"
        if h[fmt.REASON] == "schema_violation":
            errors = json.loads(h[fmt.ERRORS])
            assert errors and {"path", "rule", "value_type"} <= set(errors[0])
    # An event for every stored order.
    events = read_topic(settings, settings.kafka.events_topic, expect=len(valid))
    assert {(m.key() or b"").decode() for m in events} == set(valid)
    assert len({headers(m)["event-id"] for m in events}) == len(valid)
    # The summary adds up to what was produced.
    dlq = summary["dlq"]
    assert isinstance(dlq, dict)
    assert summary["stored"] == len(valid)
    assert summary["counts"] == "exact", "no worker died: the counts are every worker's last report"
    assert summary["stored"] + summary["duplicates"] + sum(dlq.values()) == len(messages)  # type: ignore[operator]
    assert summary["events"] == len(valid)


def test_copies_in_batches_stored_at_once_are_duplicates_or_conflicts(settings: Settings) -> None:
    """Tiny batches, three stored at once by one worker: an order and its copy (same bytes, the same content
    formatted differently, or other content) often sit in two batches in flight. Nothing valid is lost or
    dead-lettered, a copy is a duplicate, other content is a conflict, and the first version is what stays."""
    create_topics(settings)
    originals = _valid_messages(240, seed=41)
    messages: list[Generated] = []
    copies: list[tuple[int, Generated]] = []  # (position to insert at, copy)
    for i, m in enumerate(originals):
        doc = json.loads(m.value)
        if i % 3 == 0:
            value, kind = m.value, "duplicate"
        elif i % 3 == 1:
            value, kind = json.dumps(dict(reversed(doc.items())), indent=1).encode(), "duplicate"
        else:
            value, kind = json.dumps({**doc, "entry": "CHANGED"}).encode(), "conflict"
        copies.append((i + 2 + i % 5, Generated(m.key, value, kind, m.order_uid)))
    by_position: dict[int, list[Generated]] = {}
    for at, copy in copies:
        by_position.setdefault(at, []).append(copy)
    for i, m in enumerate(originals):
        messages += [*by_position.pop(i, []), m]
    messages += [c for at in sorted(by_position) for c in by_position[at]]
    assert len(messages) == 2 * len(originals)
    send(settings, messages)

    result = ordersctl(settings, "consume", "--workers", "1", "--batch-size", "3", "--stop-when-idle", "3", "--json",
                       ORDERS_PIPELINE__BATCHES_IN_FLIGHT="3")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)

    conflicts = sum(1 for _, c in copies if c.kind == "conflict")
    assert summary["stored"] == len(originals)
    assert summary["duplicates"] == len(copies) - conflicts
    assert summary["dlq"] == {"conflict": conflicts}
    dsn = settings.postgres.dsn
    uids = [m.order_uid for m in originals]
    assert _stored_orders(dsn, uids) == {m.order_uid: decode_order(m.value).model_dump(mode="json") for m in originals}
    dead = read_topic(settings, settings.kafka.dlq_topic, expect=conflicts)
    assert {(m.key(), m.value()) for m in dead} == {(c.key, c.value) for _, c in copies if c.kind == "conflict"}
    _assert_exactly_once(settings, originals)


def test_canonical_sample_is_stored_and_reads_back_identical(settings: Settings, canonical_bytes: bytes) -> None:
    create_topics(settings)
    send(settings, [Generated(b"b563feb7b2b84b6test", canonical_bytes, "valid", "b563feb7b2b84b6test")])
    _consume_until_idle(settings)
    dsn = settings.postgres.dsn
    for table in ("orders", "deliveries", "payments", "items"):
        assert db_rows(dsn, f"SELECT count(*) FROM {table} WHERE order_uid = 'b563feb7b2b84b6test'") == [(1,)]
    assert _stored_orders(dsn, ["b563feb7b2b84b6test"])["b563feb7b2b84b6test"] == json.loads(canonical_bytes)


def _valid_messages(count: int, seed: int) -> list[Generated]:
    return list(OrderGenerator(seed=seed).messages(count))


def _assert_exactly_once(settings: Settings, messages: list[Generated]) -> None:
    dsn = settings.postgres.dsn
    uids = {m.order_uid for m in messages}
    assert {r[0] for r in db_rows(dsn, "SELECT order_uid FROM orders")} == uids
    expected_items = sum(len(json.loads(m.value)["items"]) for m in messages)
    assert db_rows(dsn, "SELECT count(*) FROM items") == [(expected_items,)]
    # One event per order: published (distinct event-ids on the topic) or still pending in the outbox.
    pending = {(str(uid), int(i)) for uid, i in db_rows(dsn, "SELECT order_uid, id FROM outbox")}
    events = read_topic(settings, settings.kafka.events_topic, expect=len(uids) - len(pending))
    published = {((m.key() or b"").decode(), int(headers(m)["event-id"])) for m in events}
    assert len(published | pending) == len(uids)
    assert {uid for uid, _ in published | pending} == uids


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
    messages = _valid_messages(15_000, seed=21)
    send(settings, messages)
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--batch-size", "100", "--stop-when-idle", "4",
                           "--json", log=tmp_path / "consume.log")  # fmt: skip
    try:
        wait_for(lambda: stored_count(settings.postgres.dsn) > 1500, 120, "the run to be under way")
        # Spawned workers are children running multiprocessing's spawn entry point.
        workers = [p for p in children(proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
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
    _assert_exactly_once(settings, messages)
    events = read_topic(settings, settings.kafka.events_topic, expect=len(messages))
    assert {(m.key() or b"").decode() for m in events} == {m.order_uid for m in messages}


def test_postgres_outage_is_ridden_out_without_dlq_or_restart(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = _valid_messages(3000, seed=31)
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
    _assert_exactly_once(settings, messages)


def test_events_of_orders_stored_while_events_topic_unwritable_are_published_later(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings, events=False)  # the events topic does not exist yet: Kafka refuses the writes
    messages = _valid_messages(50, seed=41)
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
    messages = _valid_messages(15_000, seed=51)
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
    summary = _consume_until_idle(settings, "--workers", "2")
    assert summary["dlq"] == {}
    _assert_exactly_once(settings, messages)


def test_kafka_outage_is_ridden_out_without_restart(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = _valid_messages(3000, seed=61)
    invalid = list(OrderGenerator(seed=62).messages(200, invalid_ratio=1.0))
    send(settings, messages[:1500] + invalid[:100])
    # More orders (and poison) after the broker is back.
    _consume_through_outage(settings, tmp_path, "kafka", 10, lambda: send(settings, messages[1500:] + invalid[100:]))
    _assert_exactly_once(settings, messages)
    poison = Counter((m.key.decode(), m.kind) for m in invalid)
    dead = read_topic(settings, settings.kafka.dlq_topic, expect=len(invalid))
    assert Counter(((m.key() or b"").decode(), headers(m)[fmt.REASON]) for m in dead) >= poison
    events = read_topic(settings, settings.kafka.events_topic, expect=len(messages))
    assert {(m.key() or b"").decode() for m in events} == {m.order_uid for m in messages}
