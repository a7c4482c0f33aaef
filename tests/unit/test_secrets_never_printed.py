"""Commands run with known secret values, from every source, never print one: stdout and stderr are searched
for each secret (config show, a config error on a malformed DSN, db migrate against a host that refuses, cache
warm without Redis, logs at DEBUG)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import log_messages

SECRETS = ("pg-secret-1", "pg-dir-secret-2", "kafka-secret-3", "oauth-secret-4", "redis-secret-5", "token-secret-6",
           "jaas-secret-7", "keystore-secret-8", "pg-read-secret-9")  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "postgres.password").write_text("pg-dir-secret-2\n")
    (tmp_path / "token").write_text("token-secret-6\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
    return base | {
        "ORDERS_SECRETS_DIR": str(tmp_path / "secrets"),
        "ORDERS_POSTGRES__DSN": "postgresql://app:pg-secret-1@127.0.0.1:1/orders",
        "ORDERS_POSTGRES__READ_DSN": "postgresql://reader:pg-read-secret-9@127.0.0.1:1/orders",
        "ORDERS_POSTGRES__CONNECT_TIMEOUT": "2",
        "ORDERS_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:3",
        "ORDERS_KAFKA__SASL_PASSWORD": "kafka-secret-3",
        "ORDERS_KAFKA__EXTRA": json.dumps(
            {
                "sasl.oauthbearer.config": "clientId=a clientSecret=oauth-secret-4",
                "sasl.jaas.config": 'm required password="jaas-secret-7";',
                "ssl.keystore.password": "keystore-secret-8",
            }
        ),
        "ORDERS_REDIS__URL": "redis://:redis-secret-5@127.0.0.1:2/0",
        "ORDERS_API__TOKEN_FILE": str(tmp_path / "token"),
        "ORDERS_LOG__LEVEL": "DEBUG",
        "ORDERS_LOG__FORMAT": "json",
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ordersctl", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    printed = result.stdout + result.stderr
    for secret in SECRETS:
        assert secret not in printed, f"{secret} printed by {result.args[3:]}"
    assert "Traceback" not in printed


@pytest.mark.parametrize("args", [["config", "show"], ["config", "show", "--json"]])
def test_config_show(env: dict[str, str], args: list[str]) -> None:
    result = run(env, *args)
    assert result.returncode == 0, result.stderr
    assert_no_secret(result)
    assert "secrets file" in result.stdout and "ORDERS_API__TOKEN_FILE" in result.stdout


def test_db_migrate_against_a_host_that_refuses(env: dict[str, str]) -> None:
    result = run(env, "db", "migrate")
    assert result.returncode == 1
    assert "PostgreSQL unreachable at 127.0.0.1:1/orders" in result.stderr
    assert_no_secret(result)


def test_cache_warm_with_redis_down(env: dict[str, str]) -> None:
    result = run(env, "cache", "warm")
    assert result.returncode == 1
    assert_no_secret(result)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ORDERS_POSTGRES__DSN", "postgresql://app:pg-secret-1@db:notaport/orders"),
        ("ORDERS_POSTGRES__DSN", "host=db password=pg-secret-1 junk"),
        ("ORDERS_POSTGRES__READ_DSN", "postgresql://reader:pg-read-secret-9@replica:notaport/orders"),
        ("ORDERS_REDIS__URL", "redis://:redis-secret-5@cache:6379/notadb"),
    ],
)
def test_a_malformed_url_is_a_config_error_that_keeps_its_password(env: dict[str, str], name: str, value: str) -> None:
    for args in (["db", "migrate"], ["config", "show"]):
        result = run(env | {name: value}, *args)
        assert result.returncode == 2, result.stderr
        [message] = log_messages(result.stderr)  # off a terminal: one JSON record
        assert message.startswith("ordersctl: config error: invalid setting ")
        assert_no_secret(result)
