"""The web page's Pipeline view in headless Chromium against a real ``ordersctl serve``: the lag of a backlog
this test produced, per partition, then 0 once ``consume`` went through it, with the dead letters it made."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.generator import OrderGenerator
from ordersctl.observe.partitioner import DEFAULT_PARTITIONER, partition_for
from tests.browser import launch_chromium
from tests.e2e.test_serve import OUTPUT, running_serve
from tests.helpers import create_topics, ordersctl, send

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]
TOKEN = "pipeline-page-token"
PARTITIONS = 4
STALE_NOTE = r"The figures below are from \d\d:\d\d:\d\d UTC, the last read that succeeded"
WAIT_MS = 60_000  # the page refreshes every 3 s; a condition not met in a minute will not be


@pytest.fixture
def backlog(settings: Settings) -> list[Generated]:
    """Orders (a fifth of them poison) on the test's topics, and no consumer yet."""
    create_topics(settings, partitions=PARTITIONS)
    messages = list(OrderGenerator(seed=13).messages(80, invalid_ratio=0.2))
    send(settings, messages)
    return messages


@pytest.fixture
def server(settings: Settings, backlog: list[Generated], tmp_path: Path) -> Iterator[str]:
    with running_serve(settings, tmp_path / "serve.log", ORDERS_API__TOKEN=TOKEN) as base:
        yield base


def _lags(page: Page) -> dict[int, int]:
    """partition -> lag, as the chart's bars carry them."""
    bars = page.locator("#pl-lag-chart g.bar").all()
    return {int(b.get_attribute("data-partition") or -1): int(b.get_attribute("data-lag") or -1) for b in bars}


def test_pipeline_view_shows_a_backlog_then_zero_once_consumed(
    settings: Settings, backlog: list[Generated], server: str
) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    per_partition = Counter(partition_for(m.key, PARTITIONS, DEFAULT_PARTITIONER) for m in backlog)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(WAIT_MS)
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(server + "/")
            # Without the token the view says what is missing; with it, it shows the backlog.
            page.click("#pipeline-tab")
            page.wait_for_selector("#pl-error")
            assert "API token" in page.inner_text("#pl-error")
            page.fill("#token", TOKEN)
            page.locator("#token").blur()
            page.wait_for_function("n => document.querySelector('#pl-total-lag').textContent === n",
                                   arg=str(len(backlog)))  # fmt: skip
            assert _lags(page) == {p: per_partition.get(p, 0) for p in range(PARTITIONS)}
            assert page.inner_text("#pl-dead-letters") == "no dead letters"
            page.screenshot(path=str(OUTPUT / "pipeline-backlog.png"), full_page=True)

            consumed = ordersctl(settings, "consume", "--stop-when-idle", "2", "--json", timeout=180)
            assert consumed.returncode == 0, consumed.stderr[-3000:]
            dlq: dict[str, int] = json.loads(consumed.stdout)["dlq"]
            dead_lettered = sum(dlq.values())
            assert dead_lettered > 0

            page.wait_for_function("() => document.querySelector('#pl-total-lag').textContent === '0'")
            assert _lags(page) == dict.fromkeys(range(PARTITIONS), 0)
            # The page's reads never join the orders group: once consume has left (it stays a while idle, lag
            # already 0), the group has no member.
            page.wait_for_function("s => document.querySelector('#pl-group').textContent.endsWith(s)",
                                   arg=": empty, 0 member(s)")  # fmt: skip
            page.wait_for_function("n => document.querySelectorAll('#pl-dead-letter-table tbody tr').length === n",
                                   arg=min(20, dead_lettered))  # fmt: skip
            rows = page.locator("#pl-reason-table tr").all()
            shown = {r.get_attribute("data-reason"): int(r.locator("td.num").inner_text()) for r in rows}
            assert shown == dlq
            # Stored orders/s comes from PostgreSQL's statistics, which sessions report when they end at
            # the latest: it rises once the consumer's writes are counted.
            page.wait_for_function("() => Number(document.querySelector('#pl-rate').dataset.rate) > 0")
            assert page.inner_text("#pl-banner").startswith("Healthy")
            page.screenshot(path=str(OUTPUT / "pipeline-page.png"), full_page=True)
            _assert_stale_figures_are_dated(page)

            _assert_no_personal_data(page.inner_text("body"), backlog)
            assert all(u.startswith(server) for u in requests), "the page loads no external assets"
        finally:
            browser.close()


def _assert_stale_figures_are_dated(page: Page) -> None:
    """A read that fails leaves the last figures on screen: they are marked as from the last good read, not shown
    as if current. (A wrong token: the server refuses the reads, as when it is unreachable.)"""
    assert not page.locator("#pipeline-view.stale").count()
    page.fill("#token", "not-the-token")
    page.locator("#token").blur()
    page.wait_for_selector("#pipeline-view.stale #pl-error")
    assert "API token" in page.inner_text("#pl-error")
    assert re.fullmatch(STALE_NOTE, page.inner_text("#pl-stale")), page.inner_text("#pl-stale")
    assert page.inner_text("#pl-total-lag") == "0"  # still there, greyed out
    page.screenshot(path=str(OUTPUT / "pipeline-stale.png"), full_page=True)
    page.fill("#token", TOKEN)
    page.locator("#token").blur()
    page.wait_for_selector("#pipeline-view:not(.stale) #pl-banner.ok")


def _assert_no_personal_data(text: str, backlog: list[Generated]) -> None:
    for m in backlog:
        if m.kind == "valid":
            delivery = json.loads(m.value)["delivery"]
            for personal in (delivery["name"], delivery["email"], delivery["phone"]):
                assert personal not in text, "personal data on the pipeline view"
