"""The order store against real PostgreSQL: one transaction, duplicates, conflicts, bad-row isolation."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

import psycopg
import pytest

from ordersctl.adapters.order_store.writes import Rowed, Saved, Status
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.order import Order
from ordersctl.domain.rows import to_rows
from ordersctl.domain.rules import decode_order
from ordersctl.errors import DataRejected, OrderConflict, TransientError
from tests import citus_nodes
from tests.helpers import order_store

pytestmark = pytest.mark.integration


def _statuses(saved: list[Saved[Rowed]]) -> list[str]:
    return [s.status.value for s in saved]


def _conflict(saved: Saved[Rowed]) -> bool:
    return saved.status is Status.CONFLICT and isinstance(saved.error, OrderConflict)


def _orders(n: int, seed: int) -> list[Order]:
    return [decode_order(m.value) for m in OrderGenerator(seed=seed).messages(n)]


def test_batch_round_trip_duplicates_and_conflicts(migrated_db: str) -> None:
    store = order_store()
    orders = _orders(50, 1)
    with psycopg.connect(migrated_db) as conn:
        assert _statuses(store.writes.save_orders(conn, orders)) == ["stored"] * 50
        assert _statuses(store.writes.save_orders(conn, orders[:3])) == ["duplicate"] * 3
        changed = orders[0].model_copy(update={"track_number": "OTHER"})
        outcome = store.writes.save_orders(conn, [changed, *orders[1:2]])
        assert _conflict(outcome[0]) and outcome[1].status is Status.DUPLICATE
        assert [o.item.rows.order_uid for o in outcome] == [changed.order_uid, orders[1].order_uid]
        back = {o.order_uid: o for o in store.reads.get_many(conn, [o.order_uid for o in orders])}
        assert back == {o.order_uid: o for o in orders}
        assert store.reads.get(conn, orders[0].order_uid) == orders[0]  # untouched by the conflict
        assert store.outbox.pending_events(conn) == 50


def test_same_uid_twice_in_one_batch(migrated_db: str) -> None:
    store = order_store()
    a = _orders(1, 2)[0]
    other = a.model_copy(update={"track_number": "OTHER"})
    with psycopg.connect(migrated_db) as conn:
        out = store.writes.save_orders(conn, [a, a, other])
    assert _statuses(out[:2]) == ["stored", "duplicate"] and _conflict(out[2])


def test_a_copy_formatted_differently_is_a_duplicate_and_other_content_a_conflict(migrated_db: str) -> None:
    """The worker fingerprints the bytes as they came; other bytes are compared with the stored order by field."""
    store = order_store()
    raw = [m.value for m in OrderGenerator(seed=6).messages(3)]
    assert all(raw)
    orders = [decode_order(r) for r in raw]
    doc = json.loads(raw[0])
    reformatted = json.dumps(dict(reversed(doc.items())), indent=2).encode()  # same content, other bytes
    changed = json.dumps({**doc, "track_number": "OTHER"}).encode()
    with psycopg.connect(migrated_db) as conn:
        first_copies = [Rowed(to_rows(o, r)) for o, r in zip(orders, raw, strict=True)]
        assert _statuses(store.writes.save(conn, first_copies)) == ["stored"] * 3
        again = [Rowed(to_rows(decode_order(b), b)) for b in (raw[0], reformatted, changed)]
        out = store.writes.save(conn, again)
        assert _statuses(out[:2]) == ["duplicate", "duplicate"] and _conflict(out[2])
        assert store.reads.get(conn, orders[0].order_uid) == orders[0]  # untouched by the conflict
        # The same within one batch of new orders: the first copy is stored, the others compared with it.
        fresh = OrderGenerator(seed=7).messages(1)
        first = next(iter(fresh)).value
        assert first is not None
        fresh_doc = json.loads(first)
        copies = [first, json.dumps(fresh_doc, indent=1).encode(), json.dumps({**fresh_doc, "entry": "X"}).encode()]
        out = store.writes.save(conn, [Rowed(to_rows(decode_order(b), b)) for b in copies])
        assert _statuses(out[:2]) == ["stored", "duplicate"] and _conflict(out[2])
        assert store.outbox.pending_events(conn) == 4


def test_a_row_the_database_rejects_is_isolated_and_the_rest_stored(migrated_db: str) -> None:
    store = order_store()
    orders = _orders(9, 3)
    # model_construct skips validation: a value PostgreSQL rejects (sale > 100) slips through to the database.
    bad_item = orders[4].items[0].model_construct(**{**orders[4].items[0].model_dump(), "sale": 150})
    bad = orders[4].model_construct(**{**dict(orders[4]), "items": [bad_item]})
    batch = [*orders[:4], bad, *orders[5:]]
    with psycopg.connect(migrated_db) as conn:
        out = store.writes.save_orders(conn, batch)
        assert out[4].status is Status.REJECTED and isinstance(out[4].error, DataRejected)
        assert _statuses([o for i, o in enumerate(out) if i != 4]) == ["stored"] * 8
        assert store.reads.count(conn) == 8
        assert store.reads.get(conn, bad.order_uid) is None
        assert store.outbox.pending_events(conn) == 8  # none left by the attempt rolled back


def test_a_batch_postgres_accepts_is_stored_without_a_savepoint(
    migrated_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A savepoint is two more round trips per batch, paid by every batch for what is rare: a rejected value.
    store = order_store()
    with psycopg.connect(migrated_db) as conn:
        opened: list[bool] = []  # one per transaction block: False for the batch's, True for a savepoint
        original = conn.transaction

        def counting(*args: Any, **kwargs: Any) -> Any:
            opened.append(conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE)
            return original(*args, **kwargs)

        monkeypatch.setattr(conn, "transaction", counting)
        out = store.writes.save_orders(conn, _orders(5, 31))
        assert _statuses(out) == ["stored"] * 5
        assert opened == [False], f"transaction blocks opened (True: a savepoint): {opened}"


def test_concurrent_insert_of_the_same_order_is_retried_not_lost(migrated_db: str) -> None:
    """Two workers storing the same new order at once (a rebalance race): one stores, the other must retry."""
    store = order_store()
    order = _orders(1, 4)[0]
    barrier = threading.Barrier(2)
    results: list[object] = []

    def worker() -> None:
        with psycopg.connect(migrated_db) as conn:
            conn.execute("SET lock_timeout = '20s'")
            barrier.wait()
            try:
                results.append(_statuses(store.writes.save_orders(conn, [order])))
            except TransientError as exc:
                results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    kinds = sorted(type(r).__name__ if isinstance(r, Exception) else str(r) for r in results)
    assert kinds in (["TransientError", "['stored']"], ["['duplicate']", "['stored']"])
    with psycopg.connect(migrated_db) as conn:
        assert _statuses(store.writes.save_orders(conn, [order])) == ["duplicate"]


@pytest.mark.skipif(
    citus_nodes.on_citus(),
    reason="Citus has one claiming relay at a time (test_outbox_relay.py: two relays never hold the same event)",
)
def test_outbox_claims_skip_locked_rows(migrated_db: str) -> None:
    store = order_store()
    with psycopg.connect(migrated_db) as conn:
        store.writes.save_orders(conn, _orders(10, 5))
        conn.commit()
    with psycopg.connect(migrated_db) as a, psycopg.connect(migrated_db) as b, a.transaction(), b.transaction():
        first = store.outbox.claim_unpublished(a, 6)
        second = store.outbox.claim_unpublished(b, 6)
        assert len(first) == 6 and len(second) == 4
        assert not {i for i, *_ in first} & {i for i, *_ in second}
        event_id, uid, event, traceparent = first[0]
        assert traceparent is None  # tracing off
        payload = json.loads(event)
        assert payload["type"] == "order_saved" and payload["event_id"] == event_id and payload["order_uid"] == uid
        assert "delivery" not in payload and "email" not in str(payload)


def test_outbox_events_carry_the_order_totals_in_batch_order(migrated_db: str) -> None:
    """One "order saved" event per stored order, in batch order, with its totals and no personal data."""
    store = order_store()
    orders = _orders(20, 8)
    # Fractional seconds, a whole second, an early year and a non-UTC zone (the event says UTC).
    dates = ["2021-11-26T06:22:19.000250Z", "2021-11-26T06:22:19Z", "0999-01-02T03:04:05.5+03:00"]
    expected_dates = ["2021-11-26T06:22:19.000250Z", "2021-11-26T06:22:19Z", "0999-01-02T00:04:05.500000Z"]
    orders[: len(dates)] = [
        decode_order(o.model_dump_json().replace(o.date_created.isoformat().replace("+00:00", "Z"), d).encode())
        for o, d in zip(orders, dates, strict=False)
    ]
    # The one free text in the event: JSON-encoded, whatever it holds.
    orders[3] = decode_order(orders[3].model_copy(update={"track_number": 'WB "7" \\ ü'}).model_dump_json().encode())
    with psycopg.connect(migrated_db) as conn:
        store.writes.save_orders(conn, orders)
        rows = conn.execute("SELECT order_uid, payload FROM outbox ORDER BY id").fetchall()
    assert [uid for uid, _ in rows] == [o.order_uid for o in orders]  # events in batch order
    assert [payload["date_created"] for _, payload in rows[: len(dates)]] == expected_dates
    for (_, payload), order in zip(rows, orders, strict=True):
        assert payload == {
            "type": "order_saved",
            "order_uid": order.order_uid,
            "track_number": order.track_number,
            "amount": order.payment.amount,
            "currency": order.payment.currency,
            "items": len(order.items),
            "date_created": payload["date_created"],
            "content_hash": order.content_hash().hex(),
        }
        assert datetime.fromisoformat(payload["date_created"]) == order.date_created


def _seq_scans_of_orders(conn: psycopg.Connection[Any]) -> int:
    conn.execute("SELECT pg_stat_force_next_flush()")  # this session's counts reach the view now
    conn.execute("SELECT pg_stat_clear_snapshot()")
    row = conn.execute("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'orders'").fetchone()
    assert row is not None
    return int(row[0])


def test_a_batch_looks_its_orders_up_by_index_never_by_scanning_the_table(migrated_db: str) -> None:
    """The store's lookup of a batch's stored fingerprints is a key lookup in a table that only grows. Left to
    the planner it was a sequential scan of the whole table, a parallel one from ~100,000 orders (23 ms vs 5 ms
    per batch of 2,000 at 200,000 orders, and growing with the table): it must always use the index."""
    store = order_store()
    orders = _orders(300, 11)
    with psycopg.connect(migrated_db, autocommit=True) as conn:
        store.writes.save_orders(conn, orders[:200])
        conn.execute("ANALYZE orders")  # the statistics a running database has
        before = _seq_scans_of_orders(conn)
        outcomes = store.writes.save_orders(conn, orders[100:300])  # 100 stored already, 100 new
        assert _statuses(outcomes) == ["duplicate"] * 100 + ["stored"] * 100
        assert _seq_scans_of_orders(conn) == before
