"""Debian's Chromium, headless, for the web page tests (scripts/ensure-test-tools installs it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]  # fmt: skip


def launch_chromium(playwright: Any) -> Any:
    """A headless Chromium browser from a ``sync_playwright()`` context; fails loudly when it is missing."""
    assert CHROMIUM.exists(), "Debian chromium is required (scripts/ensure-test-tools installs it)"
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=_ARGS)
