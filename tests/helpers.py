"""Helpers shared by integration and e2e tests: run ordersctl as a real process, read topics back."""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Consumer, Message, TopicPartition

from ordersctl.adapters.kafka_topics import TopicAdmin
from ordersctl.adapters.order_store import OrderStore
from ordersctl.adapters.order_store.writes import Rowed, Saved
from ordersctl.config import Settings, load_settings
from ordersctl.config import settings_env as config_env
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.order import Order
from ordersctl.pipeline.publish import publish
from ordersctl.runtime import Runtime
from tests.waiting import wait_for as wait_for  # re-exported: the e2e tests wait with it from here

ROOT = Path(__file__).resolve().parents[1]


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that makes an ordersctl process use exactly these settings, JSON logs."""
    env = {key: val for key, val in os.environ.items() if not key.startswith("ORDERS_")}
    return env | config_env(settings) | {"ORDERS_LOG__FORMAT": "json"} | extra


def ordersctl(settings: Settings, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "ordersctl", *args],
        env=settings_env(settings, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )
    _captured(" ".join(args), lambda: result.stderr)
    return result


def start_ordersctl(settings: Settings, *args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ordersctl", *args],
        env=settings_env(settings, **env),
        stdout=subprocess.PIPE,
        stderr=log.open("wb"),
        cwd=ROOT,
    )
    _captured(" ".join(args), lambda: log.read_text(errors="replace"))
    return proc


# The stderr of every ordersctl process started while a test collects them (the e2e tests all do: their
# conftest checks that each line is a JSON log record).
_collecting: list[tuple[str, Callable[[], str]]] | None = None


def _captured(command: str, read: Callable[[], str]) -> None:
    if _collecting is not None:
        _collecting.append((command, read))


@contextlib.contextmanager
def collected_logs() -> Iterator[list[tuple[str, Callable[[], str]]]]:
    """Collects, for the ``with`` body, each ordersctl process's command and a reader of its stderr."""
    global _collecting
    _collecting = []
    try:
        yield _collecting
    finally:
        _collecting = None


def log_records(stderr: str, command: str = "ordersctl") -> list[dict[str, Any]]:
    """The log records of an ordersctl process's stderr (ORDERS_LOG__FORMAT=json); fails on any line that is not
    a JSON object with ``pid`` and ``process``."""
    records: list[dict[str, Any]] = []
    for number, line in enumerate(stderr.splitlines(), 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        where = f"line {number} of {command}'s stderr"
        assert isinstance(record, dict), f"{where} is not a JSON object: {line[:500]!r}"
        assert isinstance(record.get("pid"), int) and isinstance(record.get("process"), str), (
            f"{where} has no pid or process: {line[:500]!r}"
        )
        records.append(record)
    return records


def log_messages(stderr: str) -> list[str]:
    """The ``msg`` of each log record of an ordersctl process's stderr, in order."""
    return [str(record.get("msg", "")) for record in log_records(stderr)]


def finish(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> bytes:
    """Wait for an ``ordersctl consume`` started with :func:`start_ordersctl`; returns its stdout.

    If it is still running after ``timeout`` s, its workers dump their threads' stacks into the log (SIGUSR1),
    it is killed, and the test fails with the end of the log: the stacks show what the run waited on."""
    try:
        out, _ = proc.communicate(timeout=timeout)
        return out
    except subprocess.TimeoutExpired:
        for pid in children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)
        time.sleep(1)
        # Stopped, the supervisor restarts none of its workers, and they are still its children to list.
        proc.send_signal(signal.SIGSTOP)
        for pid in children(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.communicate(timeout=30)
        # One line per dead letter would hide the rest.
        lines = [line for line in log.read_text(errors="replace").splitlines() if '"msg": "dead-lettered"' not in line]
        tail = "\n".join(lines[-150:])
        raise AssertionError(f"still running after {timeout:.0f}s; end of its log:\n{tail}") from None


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def create_topics(settings: Settings, partitions: int = 4, dlq: bool = True, events: bool = True) -> None:
    rt = Runtime(settings)
    try:
        admin = TopicAdmin(rt.kafka_admin, settings.kafka)
        k = settings.kafka
        for name in [k.orders_topic] + ([k.events_topic] if events else []):
            admin.ensure(name, partitions, 1)
        if dlq:
            admin.ensure(k.dlq_topic, partitions, 1, admin.dlq_config(k.orders_topic))
    finally:
        rt.close()


def send(settings: Settings, messages: list[Generated], topic: str | None = None) -> None:
    rt = Runtime(settings)
    try:
        result = publish(rt.producer(), topic or settings.kafka.orders_topic, messages)
        assert result.failed == 0 and result.sent == len(messages), result
    finally:
        rt.close()


def read_topic(settings: Settings, topic: str, expect: int | None = None, timeout: float = 60) -> list[Message]:
    """Every message of a topic, read with assign (no group); waits until ``expect`` are there."""
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "test-reader",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        parts = list(meta.partitions)
        deadline = time.monotonic() + timeout
        while True:
            ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
            if expect is None or sum(ends.values()) >= expect or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[Message] = []
        total = sum(ends.values())
        while len(out) < total and time.monotonic() < deadline + 30:
            for msg in consumer.consume(1000, timeout=1):
                if msg.error() is None:
                    out.append(msg)
        return out
    finally:
        consumer.close()


def headers(msg: Message) -> dict[str, str]:
    raw: Any = msg.headers() or []
    return {k: (v or b"").decode("utf-8", "replace") for k, v in raw}


def db_rows(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query.encode()).fetchall()


def stored_count(dsn: str) -> int:
    return int(db_rows(dsn, "SELECT count(*) FROM orders")[0][0])


@functools.cache
def order_store() -> OrderStore:
    """The order store as the Runtime builds it; its parts work on whatever connection a test gives them."""
    return Runtime(load_settings()).store


def store_orders(dsn: str, orders: list[Order]) -> list[Saved[Rowed]]:
    """Store ``orders`` in the database at ``dsn`` as the worker would (one batch, one transaction)."""
    with psycopg.connect(dsn) as conn:
        return order_store().writes.save_orders(conn, orders)


def http_get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of ``GET path`` on 127.0.0.1:``port`` (consume's health endpoints)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()
