"""What the harness watches while faults run: progress samples, offset snapshots, and API reads."""

from __future__ import annotations

import contextlib
import json
import random
import sys
import threading
import time
import urllib.error
import urllib.request

import psycopg
from confluent_kafka import Consumer, KafkaException, TopicPartition

from chaos.run_files import RunFiles, RunSpec


def connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """A short-lived connection that gives up quickly: PostgreSQL may be down, or cut off, on purpose."""
    return psycopg.connect(dsn, connect_timeout=2, tcp_user_timeout=3000, options="-c statement_timeout=5000")


class Sampler(threading.Thread):
    """Every second: orders stored and the group's total lag; every ``snapshot_every`` s (and when asked) the
    committed offsets, which the checker holds against the stored rows."""

    def __init__(self, spec: RunSpec, files: RunFiles, stop: threading.Event, snapshot_every: float = 10.0) -> None:
        super().__init__(name="sampler", daemon=True)
        self.spec, self.files, self.stop = spec, files, stop
        self.snapshot_every = snapshot_every
        self.snapshot_now = threading.Event()
        self.latest: dict[str, float | int | None] = {}
        self._consumer = self._new_consumer()

    def run(self) -> None:
        last_snapshot = 0.0
        while not self.stop.wait(1.0):
            now = time.time()
            committed = self._committed()
            sample = {"t": now, "stored": self._stored(), "lag": self._lag(committed), "outbox": self._outbox()}
            self.latest = sample
            self.files.append("samples", sample)
            if committed is not None and (self.snapshot_now.is_set() or now - last_snapshot >= self.snapshot_every):
                self.snapshot_now.clear()
                self.files.append("offsets", {"t": now, "offsets": committed})
                last_snapshot = now
        self._consumer.close()

    def _query(self, sql: str) -> int | None:
        with contextlib.suppress(psycopg.Error), connect(self.spec.dsn) as conn:
            row = conn.execute(sql).fetchone()
            return int(str(row[0])) if row else None
        return None

    def _stored(self) -> int | None:
        return self._query("SELECT count(*) FROM orders")

    def _outbox(self) -> int | None:
        return self._query("SELECT count(*) FROM outbox")

    def _committed(self) -> dict[int, int] | None:
        tps = [TopicPartition(self.spec.orders_topic, p) for p in range(self.spec.partitions)]
        try:
            return {tp.partition: tp.offset for tp in self._consumer.committed(tps, timeout=5)}
        except KafkaException as exc:
            self._renew(exc)
            return None

    def _renew(self, exc: KafkaException) -> None:
        """A client that failed a query is replaced: one left knowing a dead coordinator may never ask again."""
        print(f"chaos: sampler: {exc}; reconnecting", file=sys.stderr, flush=True)
        with contextlib.suppress(Exception):
            self._consumer.close()
        self._consumer = self._new_consumer()

    def _new_consumer(self) -> Consumer:
        return Consumer({"bootstrap.servers": self.spec.bootstrap, "group.id": self.spec.group,
                         "enable.auto.commit": False, "log_level": 3})  # fmt: skip

    def _lag(self, committed: dict[int, int] | None) -> int | None:
        if committed is None:
            return None
        total = 0
        try:
            for p, offset in committed.items():
                low, high = self._consumer.get_watermark_offsets(TopicPartition(self.spec.orders_topic, p), timeout=5)
                total += high - (offset if offset >= 0 else low)
        except KafkaException as exc:
            self._renew(exc)
            return None
        return total


# A read sent on a connection to PostgreSQL when a partition began is answered (503) once the connection's liveness
# bound (10 s) ends it: a reader waits a little longer than that.
READ_TIMEOUT = 15.0


class Reader(threading.Thread):
    """A steady read load on the API: ids of stored orders, each answer written down for the checker."""

    def __init__(self, spec: RunSpec, files: RunFiles, port: int, stop: threading.Event, rate: float = 40.0) -> None:
        super().__init__(name="reader", daemon=True)
        self.spec, self.files, self.port, self.stop, self.rate = spec, files, port, stop, rate
        self._uids: list[str] = []
        self._rng = random.Random(1)

    def _refresh(self) -> None:
        with contextlib.suppress(psycopg.Error), connect(self.spec.dsn) as conn:
            rows = conn.execute("SELECT order_uid FROM orders TABLESAMPLE SYSTEM (5) LIMIT 500").fetchall()
            recent = conn.execute("SELECT order_uid FROM orders ORDER BY date_created DESC LIMIT 100").fetchall()
            self._uids = [str(r[0]) for r in rows + recent] or self._uids

    def run(self) -> None:
        last_refresh = 0.0
        while not self.stop.wait(1 / self.rate):
            if time.monotonic() - last_refresh > 2:
                self._refresh()
                last_refresh = time.monotonic()
            if self._uids:
                self._read(self._rng.choice(self._uids))

    def _read(self, uid: str) -> None:
        started = time.time()
        status, cache = 0, None
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/orders/{uid}", timeout=READ_TIMEOUT) as answer:
                status, cache = answer.status, answer.headers.get("X-Cache")
                json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError, OSError):
            status = 0  # no answer at all: as bad as a 5xx
        self.files.append("reads", {"t": started, "uid": uid, "status": status, "cache": cache})
