"""A configuration mistake is one line and exit 2 in every command, before any service is asked: a typo in a
variable, a malformed DSN, a refused kafka.extra key, a secret file that is missing. Off a terminal (log.format
auto) that line is a JSON log record, as every other line on stderr; on the console it is plain text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ordersctl.cli.main import app
from tests.helpers import log_messages

# Arguments a command cannot run without.
REQUIRED: dict[tuple[str, ...], list[str]] = {("trace",): ["abc"]}
MISTAKES = {
    "ORDERS_POSTGRES__DNS": ("postgresql://db/x", "unknown environment variable ORDERS_POSTGRES__DNS: did you mean "
                                                  "postgres.dsn?"),
    "ORDERS_POSTGRES__DSN": ("postgresql://u:pw-9876@db:port/x", "invalid setting postgres.dsn"),
    "ORDERS_KAFKA__EXTRA": ('{"enable.auto.commit": "true"}', "enable.auto.commit is refused"),
    "ORDERS_API__TOKEN_FILE": ("/nonexistent/token", "cannot read api.token from /nonexistent/token"),
}  # fmt: skip


def _leaves(cmd: object, prefix: list[str]) -> list[list[str]]:
    commands = getattr(cmd, "commands", None)
    if not commands:
        return [prefix]
    return [leaf for name, sub in sorted(commands.items()) for leaf in _leaves(sub, [*prefix, name])]


COMMANDS = _leaves(typer.main.get_command(app), [])
# Each command gets one of the mistakes, in turn: every mistake is tried on several commands.
CASES = [(command, *list(MISTAKES.items())[i % len(MISTAKES)]) for i, command in enumerate(COMMANDS)]


@pytest.mark.parametrize(("command", "name", "mistake"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_every_command_refuses_a_config_mistake_in_one_line(
    command: list[str], name: str, mistake: tuple[str, str]
) -> None:
    value, says = mistake
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")} | {name: value}
    args = [sys.executable, "-m", "ordersctl", *command, *REQUIRED.get(tuple(command), [])]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, env=env)
    assert result.returncode == 2, (name, result.stderr)
    assert len(result.stderr.splitlines()) == 1 and "pw-9876" not in result.stderr, result.stderr
    record = json.loads(result.stderr)
    assert record["level"] == "error" and record["process"] == command[0] and isinstance(record["pid"], int)
    assert record["msg"].startswith("ordersctl: config error: ") and says in record["msg"], record


@pytest.mark.parametrize("log_format", ["--log-format=console", "ORDERS_LOG__FORMAT=console"])
def test_on_the_console_the_config_mistake_is_one_plain_line(log_format: str) -> None:
    """The format comes from the flag or the environment: the settings that would say it could not be loaded."""
    name, (value, says) = next(iter(MISTAKES.items()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")} | {name: value}
    flag = [log_format] if log_format.startswith("--") else []
    if not flag:
        env |= dict([log_format.split("=")])
    result = subprocess.run([sys.executable, "-m", "ordersctl", *flag, "db", "migrate"], capture_output=True,
                            text=True, timeout=60, check=False, env=env)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr == f"ordersctl: config error: {says}\n"


def _config_show(toml: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``ordersctl config show`` with ORDERS_CONFIG naming ``toml`` and no other ORDERS_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")} | {"ORDERS_CONFIG": str(toml)}
    return subprocess.run([sys.executable, "-m", "ordersctl", "config", "show", *args], capture_output=True,
                          text=True, timeout=60, check=False, env=env)  # fmt: skip


def test_a_misspelt_toml_section_stops_config_show_with_a_suggestion(tmp_path: Path) -> None:
    """#21: a [kafak] section used to leave the defaults in place, and config show exited 0."""
    toml = tmp_path / "ordersctl.toml"
    toml.write_text('[kafak]\nbootstrap_servers = "kafka-1.example.com:9093"\n')
    result = _config_show(toml)
    assert result.returncode == 2, result.stderr
    [message] = log_messages(result.stderr)  # off a terminal: one JSON record, the only line
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert message == f"ordersctl: config error: unknown section [kafak] in {toml}: did you mean kafka?"
    assert result.stdout == ""


@pytest.mark.parametrize("written", ["SASL_SSL", "sasl_ssl", "Sasl_Ssl"])
def test_config_show_accepts_a_security_protocol_in_any_case(tmp_path: Path, written: str) -> None:
    toml = tmp_path / "ordersctl.toml"
    toml.write_text(f'[kafka]\nsecurity_protocol = "{written}"\nsasl_mechanism = "scram-sha-512"\n')
    result = _config_show(toml, "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["kafka"]["security_protocol"], shown["kafka"]["sasl_mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert shown["sources"]["kafka.security_protocol"] == f"file {toml}"
