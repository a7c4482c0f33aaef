"""One run of the pipeline through a PostgreSQL failover: consume and serve running, orders produced at a steady
rate, a fault on the primary mid-run; then what was measured and what ended stored and published."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ordersctl.config import Settings
from tests.e2e.test_serve import running_serve
from tests.ha.conftest import stack
from tests.helpers import create_topics, db_rows, finish, read_topic, start_ordersctl, stored_count, wait_for

ORDERS = 20_000
RATE = 1_000  # orders/s: about 20 s of load
FAULT_AFTER = 4_000  # stored orders before the fault
NODE_PORTS = (56431, 56432)


@dataclass
class Measured:
    """Wall-clock times (s since the epoch): the fault, the other node taking writes, the first order stored after
    the fault; serve's answers during the run."""

    fault_at: float = 0.0
    ready_at: float = 0.0
    resumed_at: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    longest_5xx_s: float = 0.0
    primary_after: int = 0  # the first node that took writes after the fault
    promoted: bool = False  # that node was the secondary

    @property
    def failover_s(self) -> float:
        return self.ready_at - self.fault_at

    @property
    def stall_s(self) -> float:
        """How long stores stayed stopped once the new primary took writes."""
        return max(0.0, self.resumed_at - self.ready_at)


@dataclass
class Outcome:
    produced: set[str]
    stored: list[str]
    events: Counter[str]
    summary: dict[str, object]


def primary_port(dsn: str) -> int:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        row = conn.execute("SELECT inet_server_port()").fetchone()
    assert row is not None
    return int(row[0])


def _writable_node(dsn: str, measured: Measured) -> bool:
    """A node, asked alone (no other host tried), accepts a read-write session: noted in ``measured``."""
    for port in NODE_PORTS:
        try:
            with psycopg.connect(
                dsn, host="127.0.0.1", port=port, target_session_attrs="read-write", connect_timeout=1
            ):
                measured.primary_after = port
                return True
        except psycopg.OperationalError:
            continue
    return False


@contextmanager
def serve_poller(base: str, measured: Measured) -> Iterator[None]:
    """GET /orders?limit=1 (a database read each time) every 100 ms; the longest run of 5xx or no answer."""
    stop = threading.Event()

    def poll() -> None:
        bad_since: float | None = None
        while not stop.wait(0.1):
            try:
                with urllib.request.urlopen(f"{base}/orders?limit=1", timeout=10) as resp:  # noqa: S310 (http://127.0.0.1)
                    status = resp.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = 0  # no answer
            now = time.time()
            measured.statuses[status] += 1
            if status >= 500 or status == 0:
                bad_since = bad_since or now
                measured.longest_5xx_s = max(measured.longest_5xx_s, now - bad_since)
            else:
                bad_since = None

    thread = threading.Thread(target=poll, name="serve-poller", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(15)


def run_through_failover(settings: Settings, fault: str, tmp_path: Path, seed: int) -> tuple[Measured, Outcome]:
    """consume and serve running, ORDERS orders at RATE/s, ``scripts/stack <fault>`` once FAULT_AFTER are stored."""
    dsn = settings.postgres.dsn
    create_topics(settings, partitions=4)
    before = primary_port(dsn)
    measured = Measured()
    consume = start_ordersctl(settings, "consume", "--workers", "2", "--stop-when-idle", "10", "--json",
                              log=tmp_path / "consume.log")  # fmt: skip
    try:
        with (
            running_serve(settings, tmp_path / "serve.log", dependency_failures=True) as base,
            serve_poller(base, measured),
        ):
            produce = start_ordersctl(settings, "produce", "--count", str(ORDERS), "--rate", str(RATE), "--seed",
                                      str(seed), log=tmp_path / "produce.log")  # fmt: skip
            wait_for(lambda: stored_count(dsn) >= FAULT_AFTER, 120, f"{FAULT_AFTER} orders stored before the fault")
            try:
                stack(fault, timeout=60)
                measured.fault_at = time.time()  # when the script returns, right after its kill -9
                wait_for(lambda: _writable_node(dsn, measured), 180, "a node to take writes", interval=0.1)
                measured.ready_at = time.time()
                measured.promoted = measured.primary_after != before
                assert produce.wait(180) == 0, (tmp_path / "produce.log").read_text()[-2000:]
                out = finish(consume, tmp_path / "consume.log", 300)
            finally:
                stack("ha-unblock")
    finally:
        if consume.poll() is None:
            consume.kill()
    assert consume.returncode == 0, (tmp_path / "consume.log").read_text()[-3000:]
    after = f"to_timestamp({measured.fault_at})"
    first = db_rows(dsn, f"SELECT extract(epoch FROM min(stored_at)) FROM orders WHERE stored_at > {after}")
    measured.resumed_at = float(first[0][0])
    produced = {(m.key() or b"").decode() for m in read_topic(settings, settings.kafka.orders_topic, expect=ORDERS)}
    events = Counter(
        (m.key() or b"").decode() for m in read_topic(settings, settings.kafka.events_topic, expect=ORDERS)
    )
    stored = [str(uid) for (uid,) in db_rows(dsn, "SELECT order_uid FROM orders")]
    return measured, Outcome(produced, stored, events, json.loads(out))


def report(name: str, measured: Measured, outcome: Outcome) -> str:
    """One line for the test's output (pytest -s, or the lane's summary)."""
    published = {uid for uid in outcome.events if uid}
    writable = "the secondary promoted" if measured.promoted else "the same node back"
    return (
        f"{name}: {writable} in {measured.failover_s:.1f}s, stores resumed {measured.stall_s:.1f}s after it "
        f"({measured.resumed_at - measured.fault_at:.1f}s after the fault); {len(outcome.stored)} stored of "
        f"{len(outcome.produced)} produced, lost {len(outcome.produced - set(outcome.stored))}, duplicated "
        f"{len(outcome.stored) - len(set(outcome.stored))}, events for {len(published)} orders "
        f"({sum(outcome.events.values()) - len(published)} sent again); serve: longest 5xx/no answer "
        f"{measured.longest_5xx_s:.1f}s, answers {dict(measured.statuses)}; consume restarts "
        f"{outcome.summary.get('restarts')}, retries {outcome.summary.get('retries')}"
    )
