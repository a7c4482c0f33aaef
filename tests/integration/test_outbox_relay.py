"""The outbox relay against real PostgreSQL; the producer is a stand-in whose deliveries fail as told.

(Real Kafka is used for the relay end to end in tests/e2e/test_ingest.py; a fatal producer error cannot be
caused on demand there.)"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rules import decode_order
from ordersctl.errors import ClientFailed, TransientError
from ordersctl.pipeline.outbox_relay import OutboxRelay
from tests import citus_nodes
from tests.fake_producer import FATAL, TIMED_OUT, FakeProducer
from tests.helpers import order_store, store_orders

pytestmark = pytest.mark.integration


def _relay(settings: Settings, producer: FakeProducer, on_connect: Callable[[], object] = lambda: None) -> OutboxRelay:
    @contextlib.contextmanager
    def connect() -> Iterator[psycopg.Connection[Any]]:
        on_connect()
        with psycopg.connect(settings.postgres.dsn) as conn:
            yield conn

    return OutboxRelay(connect, order_store().outbox, producer, "orders.events", page=10, timeout=1)


def _store_orders(settings: Settings, n: int) -> list[str]:
    orders = [decode_order(m.value) for m in OrderGenerator(seed=7).messages(n)]
    store_orders(settings.postgres.dsn, orders)
    return [o.order_uid for o in orders]


def _pending(settings: Settings) -> int:
    with psycopg.connect(settings.postgres.dsn) as conn:
        return order_store().outbox.pending_events(conn)


def test_confirmed_events_leave_the_outbox_page_by_page(settings: Settings) -> None:
    uids = _store_orders(settings, 15)
    producer = FakeProducer()
    relay = _relay(settings, producer)
    assert (relay.publish_once(), relay.publish_once(), relay.publish_once()) == (10, 5, 0)
    assert _pending(settings) == 0
    assert sorted(p["key"].decode() for p in producer.produced) == sorted(uids)
    event_ids = [dict(p["headers"])["event-id"] for p in producer.produced]
    assert len(set(event_ids)) == 15
    assert {json.loads(p["value"])["order_uid"] for p in producer.produced} == set(uids)


def test_unconfirmed_events_stay_for_the_next_attempt(settings: Settings) -> None:
    _store_orders(settings, 4)
    with pytest.raises(TransientError):
        _relay(settings, FakeProducer(deliver=TIMED_OUT)).publish_once()
    assert _pending(settings) == 4
    assert _relay(settings, FakeProducer()).publish_once() == 4


@pytest.mark.parametrize(
    "producer",
    [lambda: FakeProducer(deliver=FATAL), lambda: FakeProducer(refuse=FATAL, refuse_after=2)],
    ids=["fatal-delivery", "fatal-produce"],
)
def test_a_fatal_producer_error_ends_the_relay_and_keeps_every_row(settings: Settings, producer: Any) -> None:
    _store_orders(settings, 6)
    with pytest.raises(ClientFailed):
        _relay(settings, producer()).publish_once()
    # Nothing was marked published: a new producer publishes all six (again, with the same event-ids).
    assert _pending(settings) == 6
    assert _relay(settings, FakeProducer()).publish_once() == 6


class HangingProducer(FakeProducer):
    """A producer whose flush hangs past any timeout given (a stuck client), until released."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.release = threading.Event()

    def poll(self, timeout: float = -1) -> int:
        return 0

    def flush(self, timeout: float = -1) -> int:
        self.release.wait(60)
        return super().flush(timeout)


def test_a_relay_stuck_on_kafka_holds_no_row_lock_past_its_timeout(settings: Settings) -> None:
    import threading
    import time

    _store_orders(settings, 3)
    producer = HangingProducer()
    relay = _relay(settings, producer)  # timeout 1 s

    def run() -> None:
        with contextlib.suppress(Exception):
            relay.publish_once()

    stuck = threading.Thread(target=run, daemon=True)
    stuck.start()
    try:
        deadline = time.monotonic() + 10
        while len(producer.produced) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(producer.produced) == 3, "the relay did not claim and send its page"
        with psycopg.connect(settings.postgres.dsn, autocommit=True) as other:
            deadline = time.monotonic() + 20
            claimed = 0
            while time.monotonic() < deadline and not claimed:
                with other.transaction():  # another relay's claim: row locks, or Citus's one-claimer lock
                    claimed = len(order_store().outbox.claim_unpublished(other, 10))
                time.sleep(0.2)
        assert claimed == 3, "the stuck relay still holds its claim"
    finally:
        producer.release.set()
        stuck.join(10)


def test_a_woken_relay_publishes_at_once_instead_of_at_its_next_poll(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from ordersctl.pipeline import outbox_relay
    from tests.waiting import wait_for

    monkeypatch.setattr(outbox_relay, "IDLE_POLL_SECONDS", 60.0)  # only a wake-up can make it publish in time
    producer = FakeProducer()
    relay = _relay(settings, producer)
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(relay.idle.is_set, 10, "the relay to find the outbox empty and sleep")
        uids = _store_orders(settings, 3)
        relay.wake()
        wait_for(lambda: len(producer.produced) == 3, 5, "the woken relay to publish")
        assert sorted(p["key"].decode() for p in producer.produced) == sorted(uids)
    finally:
        stop.set()
        relay.wake()
        thread.join(5)
    assert not thread.is_alive(), "a stop and a wake end the relay's wait"


def test_a_relay_that_published_a_partial_page_waits_for_the_next_wake_instead_of_claiming_again(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page with room left means the claim found everything there was: claiming again at once is a transaction
    per batch that finds nothing. What is committed later wakes the relay. On Citus one relay claims at a time,
    so the holder claims again at once: rows of relays it kept waiting are its to publish."""
    import threading

    from ordersctl.pipeline import outbox_relay
    from tests.waiting import wait_for

    monkeypatch.setattr(outbox_relay, "IDLE_POLL_SECONDS", 60.0)
    transactions: list[None] = []  # one a page: each takes a connection of its own here
    producer = FakeProducer()
    relay = _relay(settings, producer, on_connect=lambda: transactions.append(None))
    stop = threading.Event()
    thread = threading.Thread(target=relay.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(relay.idle.is_set, 10, "the relay to find the outbox empty and sleep")
        _store_orders(settings, 3)
        relay.wake()
        wait_for(lambda: len(producer.produced) == 3, 5, "the woken relay to publish")
        stop.wait(0.5)  # time enough for a claim right after the page, if it made one
        if citus_nodes.on_citus():
            wait_for(relay.idle.is_set, 5, "the relay to claim again at once and find the outbox empty")
            assert len(transactions) == 3
        else:
            assert len(transactions) == 2, "one claim found the outbox empty, one published the page; no other"
            assert not relay.idle.is_set()
    finally:
        stop.set()
        relay.wake()
        thread.join(5)


def test_two_relays_never_hold_the_same_event_at_once(settings: Settings) -> None:
    """Row locks on plain PostgreSQL, the one-claimer lock on Citus (which refuses FOR UPDATE across shards):
    while one relay holds its page, another claims none of it, and claims it once the first is done."""
    uids = _store_orders(settings, 3)
    outbox = order_store().outbox
    with psycopg.connect(settings.postgres.dsn) as first, psycopg.connect(settings.postgres.dsn) as second:
        with first.transaction():
            held = outbox.claim_unpublished(first, 10)
            with second.transaction():
                assert outbox.claim_unpublished(second, 10) == []
        assert sorted(uid for _, uid, *_ in held) == sorted(uids)
        with second.transaction():
            assert len(outbox.claim_unpublished(second, 10)) == 3
