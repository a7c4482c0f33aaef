"""The real endpoints, scraped: each consume worker's metrics port and serve's /metrics with several processes,
held to Prometheus' naming conventions (read with prometheus_client's own parser) and to the README's table."""

from __future__ import annotations

import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ordersctl import __version__
from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from tests.helpers import children, create_topics, send, start_ordersctl, wait_for
from tests.metric_conventions import families, problems, readme_table

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports (consume's workers listen on port + i)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            try:
                for i in range(1, count):
                    with socket.socket() as other:
                        other.bind(("127.0.0.1", port + i))
            except OSError:
                continue
            return port
    raise AssertionError(f"no {count} consecutive free ports")


def _scrape(port: int, path: str = "/metrics") -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""  # not listening yet


def _samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _conventional_and_documented(text: str) -> None:
    assert problems(text) == [], text
    documented = readme_table()
    for name, family in families(text).items():
        assert name in documented, f"{name} is missing from the README's metric table"
        assert family.type == documented[name].type, name
        assert family.labels <= documented[name].labels, name
    [(labels, value)] = _samples(text, "ordersctl_build_info")
    assert labels["version"] == __version__ and value == 1


@contextmanager
def _running(proc: subprocess.Popen[bytes], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0 and "Traceback" not in log.read_text(errors="replace"), log.read_text()[-2000:]


@pytest.mark.slow
def test_each_consume_worker_exposes_conventional_metrics_its_process_and_only_the_lag_it_holds(
    settings: Settings, tmp_path: Path
) -> None:
    create_topics(settings, partitions=4)
    send(settings, list(OrderGenerator(seed=11).messages(60, invalid_ratio=0.1)))
    port, log = _free_ports(2), tmp_path / "consume.log"
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--metrics-port", str(port), log=log)
    with _running(proc, log):
        texts: list[str] = []

        def balanced() -> bool:
            """Every message handled, and each partition's lag reported by the one worker holding it: a worker
            that held all four before the other joined has dropped the series of those it gave away."""
            texts[:] = [_scrape(port + i) for i in range(2)]
            consumed = sum(value for text in texts for _, value in _samples(text, "ordersctl_orders_consumed_total"))
            held = [[labels["partition"] for labels, _ in _samples(text, "ordersctl_consumer_lag_messages")]
                    for text in texts]  # fmt: skip
            return consumed == 60 and sorted(held[0] + held[1]) == ["0", "1", "2", "3"] and all(held)

        wait_for(balanced, 120, "both workers to handle every message and report the lag of their own partitions")
        for text in texts:
            _conventional_and_documented(text)
            [(_, memory)] = _samples(text, "process_resident_memory_bytes")
            assert memory > 10_000_000, "a worker's own process metrics"
            [(_, cpu)] = _samples(text, "process_cpu_seconds_total")
            assert cpu > 0


@pytest.mark.slow
def test_serve_with_several_processes_exposes_conventional_metrics_and_the_process_metrics_of_each(
    settings: Settings, tmp_path: Path
) -> None:
    port, log = _free_ports(1), tmp_path / "serve.log"
    proc = start_ordersctl(settings, "serve", "--port", str(port), "--processes", "2", log=log,
                           ORDERS_API__DRAIN_SECONDS="0")  # fmt: skip
    with _running(proc, log):
        wait_for(lambda: len(children(proc.pid)) == 2, 60, "two server processes")
        wait_for(lambda: _scrape(port, "/health/ready") != "", 60, "serve to become ready")
        for _ in range(6):
            _scrape(port, "/orders/no-such-order")
        text = _scrape(port)
        _conventional_and_documented(text)
        servers = {str(pid) for pid in children(proc.pid)}
        for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
            assert {labels["pid"] for labels, _ in _samples(text, name)} == servers, name
        assert _samples(text, "ordersctl_http_requests_total"), "the requests, summed over the processes"
