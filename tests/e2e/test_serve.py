"""``ordersctl serve`` as a real process: the pipeline's canonical order over HTTP, schemathesis, Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from xml.etree import ElementTree

import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.generator import OrderGenerator
from tests.browser import launch_chromium
from tests.helpers import ROOT, create_topics, ordersctl, send, start_ordersctl
from tests.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
OUTPUT = ROOT / "test-output"
CANONICAL = "b563feb7b2b84b6test"
# SIGTERM stops these servers at once (api.drain_seconds 0): the drain has its own test, test_serve_drain.py.
NO_DRAIN = {"ORDERS_API__DRAIN_SECONDS": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - our own http://127.0.0.1 server
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as an operator would; kill only if serve ignores it for 10 s (the test then fails on its code)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


@contextmanager
def running_serve(
    settings: Settings, log: Path, *args: str, dependency_failures: bool = False, **env: str
) -> Iterator[str]:
    """``ordersctl serve`` on a free port until the block ends (SIGTERM, no drain unless ``env`` asks for one);
    yields its base URL once it is ready, and requires a clean exit (code 0, no traceback in its log; with
    ``dependency_failures``, tracebacks are expected there: serve logs each dependency failure with its own)."""
    port = _free_port()
    proc = start_ordersctl(settings, "serve", "--port", str(port), *args, log=log, **(NO_DRAIN | env))
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return _get(f"{base}/health/ready")[0] == 200
        except OSError:
            return False  # not listening yet

    try:
        wait_for(ready, 60, "serve to become ready")
        yield base
    finally:
        _terminate(proc)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0 and (dependency_failures or "Traceback" not in text), text[-2000:]


@pytest.fixture
def server(settings: Settings, canonical_bytes: bytes, tmp_path: Path) -> Iterator[str]:
    """Orders stored through the pipeline (produce -> consume), then a running ``ordersctl serve``."""
    create_topics(settings)
    messages = [Generated(CANONICAL.encode(), canonical_bytes, "valid", CANONICAL)]
    messages += list(OrderGenerator(seed=3).messages(30))
    send(settings, messages)
    consumed = ordersctl(settings, "consume", "--stop-when-idle", "2", timeout=180)
    assert consumed.returncode == 0, consumed.stderr[-2000:]
    with running_serve(settings, tmp_path / "serve.log") as base:
        yield base
    log = (tmp_path / "serve.log").read_text()
    for secret_ish in ("Test Testov", "test@gmail.com", "+9720000000"):
        assert secret_ish not in log, "personal data in the access log"


@pytest.mark.slow  # the server fixture alone (produce, consume, serve) takes several seconds
def test_canonical_order_from_the_pipeline_over_http(server: str, canonical_bytes: bytes) -> None:
    status, headers, body = _get(f"{server}/orders/{CANONICAL}")
    assert status == 200
    assert json.loads(body) == json.loads(canonical_bytes)
    assert headers["X-Cache"] == "memory"  # warmed at start


@pytest.mark.slow
def test_schemathesis_with_all_checks_finds_nothing(server: str, tmp_path: Path) -> None:
    """Every check, including "a request the document allows is not refused" (so the document must declare
    every constraint the API enforces) and the stateful phase, which follows the document's links."""
    OUTPUT.mkdir(exist_ok=True)
    report = OUTPUT / "schemathesis-junit.xml"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", f"{server}/openapi.json",
         "--checks", "all",
         "--max-examples", "40", "--seed", "1", "--request-timeout", "10",
         "--report", "junit", "--report-junit-path", str(report)],
        capture_output=True, text=True, timeout=600, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    suite = ElementTree.parse(report).getroot()  # noqa: S314 - a report our own test run just wrote
    tested = {case.get("name") for case in suite.iter("testcase")}
    assert {"GET /orders/{order_uid}", "GET /orders", "GET /health/ready", "GET /docs/static/{name}",
            "Stateful tests"} <= tested  # fmt: skip
    assert re.search(r"API Links:\s+2 covered / 2 selected / 2 total", result.stdout), result.stdout[-3000:]
    assert suite.get("failures") == "0" and suite.get("errors") == "0"


@pytest.mark.slow
def test_web_page_in_headless_chromium(server: str) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server + "/")
            page.wait_for_selector("#recent li[data-uid]")
            page.fill("#uid", CANONICAL)
            page.click("button[type=submit]")
            page.wait_for_selector("#order-title")
            assert CANONICAL in page.inner_text("#order-title")
            assert page.inner_text("dd[data-field=track_number]") == "WBILMTESTTRACK"
            assert "Mascaras" in page.inner_text("#items")
            assert page.locator("#items tbody tr").count() == 1
            page.screenshot(path=str(OUTPUT / "web-page.png"), full_page=True)
            # An unknown id shows the API's error, not a blank page.
            page.fill("#uid", "no-such-order")
            page.click("button[type=submit]")
            page.wait_for_selector("#error")
            assert "order not found" in page.inner_text("#error")
            assert all(u.startswith(server) for u in requests), "the page loads no external assets"
        finally:
            browser.close()


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def test_several_processes_share_a_port_sum_metrics_and_are_replaced(settings: Settings, tmp_path: Path) -> None:
    port = _free_port()
    proc = start_ordersctl(settings, "serve", "--port", str(port), "--processes", "2", log=tmp_path / "serve.log",
                           **NO_DRAIN)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: len(_children(proc.pid)) == 2, 30, "two server processes")
        wait_for(lambda: _get(f"{base}/health/live")[0] == 200, 30, "the servers to answer")
        first = _children(proc.pid)
        statuses = [_get(f"{base}/orders/no-such-order")[0] for _ in range(40)]
        assert statuses == [404] * 40
        # Whichever process answers /metrics reports the sum over both.
        for _ in range(4):
            text = _get(f"{base}/metrics")[2].decode()
            counted = [
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("ordersctl_http_requests_total{") and 'route="/orders/{order_uid}"' in line
            ]
            assert sum(counted) == 40, text[:2000]
        # A server process that dies is replaced; the port keeps answering meanwhile.
        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(_children(proc.pid) - {victim}) == 2, 30, "a replacement process")
        assert all(_get(f"{base}/health/live")[0] == 200 for _ in range(10))
    finally:
        _terminate(proc)
    assert proc.returncode == 0, (tmp_path / "serve.log").read_text()[-2000:]
    assert not _children(proc.pid)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0, "a server process outlived serve"
