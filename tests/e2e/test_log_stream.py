"""The JSON log stream of real processes (log.format json, as every e2e test runs them; tests/e2e/conftest.py
checks each captured line): what librdkafka, waitress, a worker's crash and the final summaries write is a record
with pid and process, and worker in a worker process."""

from __future__ import annotations

import signal
import socket
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ordersctl.config import Settings
from tests.helpers import create_topics, log_records, ordersctl, start_ordersctl, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _records(log: Path) -> list[dict[str, Any]]:
    return log_records(log.read_text(errors="replace"))


def test_librdkafka_lines_of_a_consume_worker_and_the_summary_are_records(settings: Settings, tmp_path: Path) -> None:
    """A worker's consumer pointed at a port where nothing listens: librdkafka's complaints come through the
    worker's log as records naming the worker; the supervisor's summary is a record of its own."""
    log = tmp_path / "consume.log"
    proc = start_ordersctl(settings, "consume", log=log, ORDERS_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{_closed_port()}")
    try:

        def rdkafka() -> list[dict[str, Any]]:
            return [r for r in _records(log) if r["logger"] == "ordersctl.librdkafka"]

        wait_for(lambda: bool(rdkafka()), 60, "librdkafka to log the refused connection")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    records = _records(log)
    line = rdkafka()[0]
    assert line["process"] == "consume" and line["worker"] == 0 and line["pid"] != proc.pid
    assert "Connection refused" in line["msg"], line
    [done] = [r for r in records if r["msg"].startswith("consume: done. ")]
    assert done["pid"] == proc.pid and done["process"] == "consume" and "worker" not in done


def test_a_worker_crash_and_the_crash_loop_line_are_records(settings: Settings) -> None:
    """Each start of the worker fails (its metrics port is taken): its traceback is one record of the worker's pid,
    and consume's last line, the crash loop, is one record too."""
    create_topics(settings)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = ordersctl(settings, "consume", "--metrics-port", str(port), timeout=120,
                           ORDERS_PIPELINE__CRASH_LOOP_RESTARTS="1")  # fmt: skip
    assert result.returncode == 1, result.stderr[-3000:]
    records = log_records(result.stderr)
    crashes = [r for r in records if r.get("exc_info")]
    assert crashes, result.stderr[-3000:]
    assert all(r["process"] == "consume" and r["worker"] == 0 for r in crashes)
    supervisor = {r["pid"] for r in records if "worker" not in r}
    assert len(supervisor) == 1 and supervisor.isdisjoint(r["pid"] for r in crashes)
    assert len({r["pid"] for r in crashes}) == 2, "two starts, two processes"
    last = records[-1]
    assert last["level"] == "error" and last["msg"].startswith("ordersctl: error: consume stopped: worker 0 crash loop")


def test_waitress_lines_of_each_server_process_are_records(settings: Settings, tmp_path: Path) -> None:
    """One thread per server and concurrent requests: waitress warns of its task queue, through the log of the
    server process that queued them."""
    port = _closed_port()
    log = tmp_path / "serve.log"
    proc = start_ordersctl(settings, "serve", "--port", str(port), "--processes", "2", "--warm-limit", "0", log=log,
                           ORDERS_API__THREADS="1", ORDERS_API__DRAIN_SECONDS="0")  # fmt: skip

    def get(path: str) -> None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
                response.read()
        except OSError:
            pass  # not listening yet, or busy: only waitress's log line matters here

    def burst() -> bool:
        threads = [threading.Thread(target=get, args=("/orders?limit=100",)) for _ in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return any(r["logger"].startswith("waitress") for r in _records(log))

    try:
        wait_for(lambda: "serve: listening" in log.read_text(), 60, "serve to listen")
        wait_for(burst, 60, "waitress to warn of its queue")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    records = _records(log)
    waitress = [r for r in records if r["logger"].startswith("waitress")]
    assert all(r["process"] == "serve" and r["worker"] in (0, 1) and r["pid"] != proc.pid for r in waitress)
    listening = next(r for r in records if r["msg"].startswith("serve: listening"))
    assert listening["pid"] == proc.pid and "worker" not in listening
