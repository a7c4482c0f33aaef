"""The command tree: help everywhere, one-line errors, exit codes; no service is needed (or reachable).

The commands run in this process (Typer's CliRunner isolates their output and environment) through
``cli.main.main``, the edge that turns errors into exit codes. Only what crosses a process boundary runs as a
process of its own: the installed entry point (nothing connects at import time) and ``serve``'s workers."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ordersctl.cli.main import app, main

# Addresses where nothing listens: any attempt to connect would fail (and slow the test down).
DOWN = {
    "ORDERS_POSTGRES__DSN": "postgresql://ordersctl:topsecret@127.0.0.1:1/orders",
    "ORDERS_POSTGRES__CONNECT_TIMEOUT": "2",
    "ORDERS_REDIS__URL": "redis://:redissecret@127.0.0.1:2/0",
    "ORDERS_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:3",
    # The lines a person reads; the JSON log stream of the same errors: test_log_stream.py.
    "ORDERS_LOG__FORMAT": "console",
}


def _paths(cmd: Any, prefix: list[str]) -> Iterator[list[str]]:
    yield prefix
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _paths(sub, [*prefix, name])


ALL_COMMANDS = list(_paths(typer.main.get_command(app), []))


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None) -> Ran:
    """``ordersctl ARGS`` in this process, with the environment pointing at addresses where nothing listens."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level  # the command sets logging up for its own (isolated) stderr
    try:
        with CliRunner().isolation(env={**DOWN, **(env or {})}) as (out, err, _):
            code = main(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            return Ran(code, out.getvalue().decode(), err.getvalue().decode())
    finally:
        root.handlers[:], root.level = handlers, level


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m ordersctl ARGS``: a process of its own, for what only a process boundary shows."""
    return subprocess.run(
        [sys.executable, "-m", "ordersctl", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **DOWN},
        check=False,
    )


def test_tree_has_every_group() -> None:
    top = {p[0] for p in ALL_COMMANDS if p}
    assert {"db", "topics", "consume", "serve", "produce", "dlq", "cache", "config", "status", "trace"} <= top


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=lambda p: " ".join(p) or "ordersctl")
def test_every_command_has_help_with_an_example(path: list[str]) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(app, [*path, "--help"], env=DOWN)
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"{' '.join(path)} --help has no example"
    assert time.monotonic() - started < 20, "help must not wait on any service"


def test_the_entry_point_helps_with_every_service_down_without_connecting_at_import() -> None:
    started = time.monotonic()
    result = run_process("--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout and time.monotonic() - started < 20


def test_migrate_with_postgres_down_prints_one_line_and_exits_1() -> None:
    result = run_cli("db", "migrate")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PostgreSQL unreachable at 127.0.0.1:1/orders" in lines[0]
    assert "topsecret" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow  # the Kafka client waits out its timeout
def test_topics_with_kafka_down_prints_one_line_and_exits_1() -> None:
    result = run_cli("topics", "list")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("ordersctl: error: Kafka unreachable at 127.0.0.1:3")


@pytest.mark.parametrize(
    "args",
    [["db", "migrate", "--bogus"], ["topics", "create", "--partitions", "0"], ["nosuchcommand"]],
)
def test_bad_argument_gives_one_line_and_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("ordersctl: error:")


def test_config_show_json_masks_passwords_and_goes_to_stdout() -> None:
    result = run_cli("config", "show", "--json", env={"ORDERS_API__TOKEN": "apitoken"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["postgres"]["dsn"] == "postgresql://ordersctl:***@127.0.0.1:1/orders"
    for secret in ("topsecret", "redissecret", "apitoken"):
        assert secret not in result.stdout + result.stderr


def test_config_flag_beats_environment() -> None:
    result = run_cli("--dsn", "postgresql://a:flagpw@flaghost/db", "config", "show", "--json")
    data = json.loads(result.stdout)
    assert data["postgres"]["dsn"] == "postgresql://a:***@flaghost/db"


def test_serve_on_a_port_in_use_is_one_line_and_exit_1() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_process("serve", "--port", str(port), "--processes", "2")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


@pytest.mark.slow  # Kafka's metadata request waits out its timeout
def test_status_with_every_service_down_shows_each_down_and_exits_1() -> None:
    result = run_cli("status", "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert [(s["name"], s["up"]) for s in doc["services"]] == [
        ("PostgreSQL", False),
        ("Redis", False),
        ("Kafka", False),
    ]
    assert doc["unread"] == {"orders": "Kafka down", "dlq": "Kafka down", "outbox": "PostgreSQL down",
                             "stored": "PostgreSQL down"}  # fmt: skip
    assert "Traceback" not in result.stderr
    for secret in ("topsecret", "redissecret"):
        assert secret not in result.stdout + result.stderr


@pytest.mark.slow
def test_trace_with_every_service_down_says_what_it_could_not_read_and_exits_1() -> None:
    result = run_cli("trace", "some-order-1", "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    assert doc["verdict"] == "unknown" and set(doc["unread"]) == {"kafka", "postgres", "redis"}
    assert "Traceback" not in result.stderr
    for secret in ("topsecret", "redissecret"):
        assert secret not in result.stdout + result.stderr


BAD_OBSERVE_ARGS = [["trace", "not an id"], ["status", "--since", "yesterday"], ["trace", "x", "--since", "soon"]]


@pytest.mark.parametrize("args", BAD_OBSERVE_ARGS)
def test_status_and_trace_refuse_bad_arguments_with_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2 and result.stderr.startswith("ordersctl: error: Invalid value"), result.stderr
