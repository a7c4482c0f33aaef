"""Commands load only what they use (issue #24): ``--help`` and ``config show`` answer without importing the
client libraries, the web stack or the order generator, which are most of a command's start-up time.

Structural, not timed: the modules a fresh ``python -m ordersctl`` imported, as ``-X importtime`` lists them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

# Each is imported by the commands that use it, inside them (or in the modules only those commands load).
CLIENTS = ("confluent_kafka", "psycopg", "psycopg_pool", "redis")
WEB_AND_TOOLS = ("falcon", "waitress", "faker", "prometheus_client")
# The settings: help reads none. (Typer itself coerces the options of a command it runs with pydantic, the root
# callback's included, so only the top-level --help runs without pydantic; config show checks the DSN as libpq
# parses it, with psycopg's parser: psycopg is allowed there.)
SETTINGS = ("pydantic_settings", "ordersctl.config")


def imported_packages(*args: str) -> set[str]:
    """The modules and top-level packages ``python -m ordersctl ARGS`` imported, in a process of its own."""
    env = {key: val for key, val in os.environ.items() if not key.startswith("ORDERS_")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ordersctl", *args],
        env=env | {"ORDERS_LOG__FORMAT": "json"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.rsplit("|", 1)[-1] for line in result.stderr.splitlines() if line.startswith("import time:")]
    modules = {row.strip() for row in rows[1:]}  # the first row is the header
    assert "ordersctl.cli.main" in modules and "typer" in modules  # the listing is what it claims to be
    return modules | {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("args", [["--help"], ["status", "--help"], ["trace", "--help"], ["dlq", "replay", "--help"]])
def test_help_loads_no_client_and_no_settings(args: list[str]) -> None:
    loaded = imported_packages(*args)
    unexpected = {*CLIENTS, *WEB_AND_TOOLS, *SETTINGS}
    assert loaded.isdisjoint(unexpected), sorted(loaded & unexpected)


def test_the_top_level_help_loads_no_pydantic() -> None:
    assert "pydantic" not in imported_packages("--help")


def test_config_show_loads_the_settings_but_no_kafka_redis_or_web_client() -> None:
    loaded = imported_packages("config", "show", "--json")
    assert "pydantic_settings" in loaded
    unexpected = {"confluent_kafka", "psycopg_pool", "redis", *WEB_AND_TOOLS}
    assert loaded.isdisjoint(unexpected), sorted(loaded & unexpected)
