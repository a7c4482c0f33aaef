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
# callback's included, so only the top-level --help runs without pydantic.)
SETTINGS = ("pydantic_settings", "ordersctl.config")


def imported_packages(*args: str, **env: str) -> set[str]:
    """The modules and top-level packages ``python -m ordersctl ARGS`` imported, in a process of its own."""
    clean = {key: val for key, val in os.environ.items() if not key.startswith("ORDERS_")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ordersctl", *args],
        env=clean | {"ORDERS_LOG__FORMAT": "json"} | env,
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


def test_config_show_loads_the_settings_but_no_client() -> None:
    # A plain URL is checked without libpq's parser (settings_urls._PLAIN_URL); one with a query still is.
    loaded = imported_packages("config", "show", "--json", ORDERS_POSTGRES__DSN="postgresql://u:pw@db:5432/orders")
    assert "ordersctl.config" in loaded
    # Nor pydantic-settings: settings_sources reads every source itself, so it would be imported for nothing.
    unexpected = {*CLIENTS, *WEB_AND_TOOLS, "pydantic_settings"}
    assert loaded.isdisjoint(unexpected), sorted(loaded & unexpected)


@pytest.mark.parametrize(("given", "seen"), [(None, "__all__"), ("", ""), ("1", "1")])
def test_pydantic_plugins_are_not_looked_up_unless_the_user_says(given: str | None, seen: str) -> None:
    env = {key: val for key, val in os.environ.items() if key != "PYDANTIC_DISABLE_PLUGINS"}
    if given is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = given
    code = "import os, ordersctl.cli.main; print(repr(os.environ['PYDANTIC_DISABLE_PLUGINS']))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          check=True, cwd=ROOT)  # fmt: skip
    assert done.stdout.strip() == repr(seen)


# A command run until it builds a client: the probe put in the builder's place says whether a library was imported
# by then, and ends the command.
PROBE = """
import sys
import {module} as builders

def probe(*args, **kwargs):
    print({library!r} in sys.modules, flush=True)
    raise SystemExit(0)

for name in {names!r}:
    setattr(builders, name, probe)
sys.argv = ["ordersctl", *sys.argv[1:]]
from ordersctl.cli.entry import run
run()
"""


def imported_before_building(library: str, module: str, names: tuple[str, ...], args: list[str]) -> bool:
    clean = {key: val for key, val in os.environ.items() if not key.startswith("ORDERS_")}
    script = PROBE.format(module=module, library=library, names=names)
    result = subprocess.run(
        [sys.executable, "-c", script, *args], env=clean | {"ORDERS_LOG__FORMAT": "json"},
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() in ("True", "False"), result.stderr[-3000:]
    return result.stdout.strip() == "True"


@pytest.mark.parametrize("library", ["redis", "psycopg"])
@pytest.mark.parametrize("args", [["status", "--json"], ["trace", "abc123", "--json"]])
def test_status_and_trace_build_their_kafka_clients_before_importing_the_other_clients(
    args: list[str], library: str
) -> None:
    # librdkafka then connects in its threads while redis-py and psycopg (0.15 s of CPU) are imported: kafka_view.py.
    assert not imported_before_building(library, "ordersctl.observe.kafka_view", ("kafka_view",), args)


KAFKA_ONLY = [
    ["topics", "create"],
    ["dlq", "inspect", "--json"],
    ["dlq", "replay", "--dry-run"],
    ["produce", "--count", "1"],
]


@pytest.mark.parametrize("args", KAFKA_ONLY)
def test_kafka_only_commands_build_a_runtime_without_importing_psycopg(args: list[str]) -> None:
    # They never talk to PostgreSQL: its client library (about 75 ms of CPU) is imported by the Runtime's
    # PostgreSQL methods, not with the Runtime.
    builders = ("make_admin", "make_consumer", "make_producer")
    assert not imported_before_building("psycopg", "ordersctl.adapters.kafka", builders, args)
