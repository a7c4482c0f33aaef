"""The Pipeline view in headless Chromium over a DLQ of hostile dead letters (issue #26): the dead letters render
(unreadable fields marked), and a panel whose endpoint fails shows its error while the others still render."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ordersctl.config import Settings
from tests.browser import launch_chromium
from tests.e2e.test_serve import OUTPUT, running_serve
from tests.fuzz.hostile import corpus, dlq_records
from tests.fuzz.loop import produce, tool
from tests.helpers import create_topics

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]
TOKEN = "hostile-page-token"
WAIT_MS = 60_000


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[str]:
    create_topics(settings, partitions=2)
    produce(settings, corpus())
    tool(settings, "consume", "--stop-when-idle", "2", "--json")
    produce(settings, [letter.record for letter in dlq_records()], topic=settings.kafka.dlq_topic)
    with running_serve(settings, tmp_path / "serve.log", ORDERS_API__TOKEN=TOKEN) as base:
        yield base


def _open(browser: Any, server: str, fail: str | None = None) -> Page:
    """The Pipeline view with the token entered; requests matching ``fail`` answer as a failing proxy would."""
    page: Page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    if fail is not None:
        page.route(fail, lambda route: route.fulfill(status=500, body="500 Internal Server Error",
                                                     content_type="text/plain"))  # fmt: skip
    page.goto(server + "/#pipeline")
    page.fill("#token", TOKEN)
    page.locator("#token").blur()
    return page


def test_hostile_dead_letters_render_and_a_failing_panel_keeps_to_itself(server: str) -> None:
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = _open(browser, server)
            page.wait_for_selector("#pl-dead-letter-table tbody tr")
            cells = page.locator("#pl-dead-letter-table td.uid").all_inner_texts()
            assert "unreadable" in cells, cells
            assert page.inner_text("#pl-banner").split()[0] in ("Healthy", "Not")
            page.screenshot(path=str(OUTPUT / "pipeline-hostile.png"), full_page=True)
            page.close()

            # The dead letters' endpoint fails as a proxy in front of it would: plain text, no JSON.
            page = _open(browser, server, fail="**/pipeline/dead-letters")
            page.wait_for_selector("#pl-dead-letters-error")
            assert "500" in page.inner_text("#pl-dead-letters-error")
            page.wait_for_function("() => document.querySelector('#pl-total-lag').textContent === '0'")
            assert page.locator("#pl-reason-table tr").count() > 0, "the other panels still render"
            assert page.inner_text("#pl-banner").split()[0] in ("Healthy", "Not")
            page.screenshot(path=str(OUTPUT / "pipeline-panel-error.png"), full_page=True)
            page.close()

            # The opposite: the status fails; its error shows in its own panel, the dead letters still render.
            page = _open(browser, server, fail="**/pipeline/status")
            page.wait_for_selector("#pl-banner #pl-error")
            assert "/pipeline/status answered 500" in page.inner_text("#pl-banner")
            page.wait_for_selector("#pl-dead-letter-table tbody tr")
            assert "unreadable" in page.locator("#pl-dead-letter-table td.uid").all_inner_texts()
            assert page.locator("#pl-dead-letters-error").count() == 0
            page.screenshot(path=str(OUTPUT / "pipeline-status-error.png"), full_page=True)
        finally:
            browser.close()
