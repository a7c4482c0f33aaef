"""consume tells the platform how it is: /readyz and /livez on its supervisor's health port, and a crash loop stops
it with a non-zero exit and one line (errors that cannot heal: test_fatal_errors.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.helpers import create_topics, http_get, log_messages, ordersctl, send, start_ordersctl, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answer(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        return http_get(port, path)
    except OSError:
        return 0, {}  # not listening yet


@contextmanager
def _running(proc: subprocess.Popen[bytes], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Stop the consume process and its workers, whatever the test left them in (SIGSTOP included)."""
    try:
        yield proc
    finally:
        for pid in _worker_pids(proc.pid):
            os.kill(pid, signal.SIGCONT)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        assert "Traceback" not in log.read_text(errors="replace")


def _worker_pids(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


def test_readyz_answers_200_only_once_every_worker_has_partitions(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings, partitions=4)
    port = _free_port()
    log = tmp_path / "consume.log"
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--health-port", str(port), log=log)
    with _running(proc, log):
        seen: list[int] = []

        def ready() -> bool:
            seen.append(_answer(port, "/readyz")[0])
            return seen[-1] == 200

        wait_for(ready, 90, "/readyz to answer 200", interval=0.1)
        assert 503 in seen, "ready before the workers joined"
        # At the first 200 each worker holds partitions: the group says so.
        admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
        group = admin.describe_consumer_groups([settings.kafka.group_id])[settings.kafka.group_id].result(10)
        assert len(group.members) == 2
        assert all(member.assignment.topic_partitions for member in group.members)
        status, body = http_get(port, "/readyz")
        assert status == 200 and body["status"] == "ok"
        assert http_get(port, "/livez")[0] == 200


def test_livez_fails_for_a_worker_holding_lagging_partitions_and_stopped(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings, partitions=2)
    send(settings, list(OrderGenerator(seed=41).messages(30_000)))
    port = _free_port()
    log = tmp_path / "consume.log"
    # One order a batch: the backlog lasts long enough to stop the worker in the middle of it.
    proc = start_ordersctl(settings, "consume", "--batch-size", "1", "--health-port", str(port), log=log,
                           ORDERS_PIPELINE__STALL_SECONDS="4")  # fmt: skip
    with _running(proc, log):
        lagging: dict[str, object] = {}

        seen: list[tuple[int, dict[str, Any]]] = []

        def worker_lags() -> bool:
            status, body = _answer(port, "/livez")
            seen.append((status, body))
            worker = body.get("workers", {}).get("0")
            if status == 200 and isinstance(worker, dict) and worker["lag"] > 0:
                lagging.update(worker)
                return True
            return False

        try:
            wait_for(worker_lags, 60, "the worker to report lag", interval=0.2)
        except AssertionError as exc:
            progress = [line for line in log.read_text().splitlines() if "lag=" in line or "progress" in line]
            raise AssertionError(f"{exc}; /livez said last {seen[-3:]}; progress {progress[-6:]}") from None
        pid = int(str(lagging["pid"]))
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        wait_for(lambda: _answer(port, "/livez")[0] == 503, 15, "/livez to fail")
        assert time.monotonic() - stopped >= 3, "failed before stall_seconds"
        status, body = http_get(port, "/livez")
        assert status == 503 and body["stalled"] == [0]
        os.kill(pid, signal.SIGCONT)
        wait_for(lambda: _answer(port, "/livez")[0] == 200, 30, "/livez to recover once the worker runs again")


def test_a_worker_failing_on_every_start_stops_consume_within_the_crash_loop_window(
    settings: Settings, tmp_path: Path
) -> None:
    """Each start of the worker fails (its metrics port is taken): 5 restarts within 300 s (the defaults), then
    consume exits 1 with one line instead of restarting it for ever."""
    create_topics(settings)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = ordersctl(settings, "consume", "--metrics-port", str(port), timeout=240)
    assert time.monotonic() - started < 240
    assert result.returncode == 1, result.stderr[-3000:]
    messages = log_messages(result.stderr)
    ours = [message for message in messages if message.startswith("ordersctl: ")]
    assert ours == [
        "ordersctl: error: consume stopped: worker 0 crash loop: died 6 times within 300 s, each within 30 s of its"
        " start (5 restarts did not help)"
    ]
    assert messages[-1] == ours[0]
