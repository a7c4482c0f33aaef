"""The secured stack (``ORDERS_STACK_SECURE=1 scripts/stack up``), reached as a user would: with the client settings
it writes, ``.stack/secure/ordersctl.toml`` (Kafka over SASL_SSL with SCRAM-SHA-512) and ``ordersctl-mtls.toml``
(Kafka over mutual TLS); both reach PostgreSQL through PgBouncer (transaction pooling, verify-full) and Redis over
TLS as an ACL user. The fixtures fail loudly when the secured stack is not up."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from ordersctl.adapters.kafka import make_admin
from ordersctl.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
SECURE = Path(os.environ.get("ORDERS_STACK_DIR") or ROOT / ".stack") / "secure"
# The topic and group prefix the secured stack's ACLs allow for tests (scripts/stack.d/kafka_acls.py).
TEST_PREFIX = "ordersctl-test-"


@dataclass(frozen=True)
class SecureClient:
    """ordersctl with one of the secured stack's settings files, on topics and a group of its own."""

    config: Path
    env: dict[str, str]
    settings: Settings
    # Everything the commands run printed, to look for secrets in.
    transcript: list[str] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "ordersctl", *args],
            env=self.env | env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        self.transcript.extend((done.stdout, done.stderr))
        return done

    def secrets(self) -> list[str]:
        """The secured stack's passwords, as its settings files name them."""
        return [path.read_text().strip() for path in (SECURE / "secrets").iterdir()]

    def start(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "ordersctl", *args], env=self.env, stderr=log.open("wb"), cwd=ROOT
        )


def _require(what: str, host: str | None, port: int | None) -> None:
    try:
        socket.create_connection((host or "127.0.0.1", port or 0), timeout=2).close()
    except OSError as exc:
        pytest.fail(
            f"the secured stack's {what} is not running at {host}:{port} ({exc}); start it with: "
            "ORDERS_STACK_SECURE=1 scripts/stack up",
            pytrace=False,
        )


def _on_path(url: str, path: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, parts.fragment))


def _load(config: Path, env: dict[str, str]) -> Settings:
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("ORDERS_")]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        return load_settings(config)


@pytest.fixture(params=["ordersctl.toml", "ordersctl-mtls.toml"], ids=["scram", "mtls"])
def secure(request: pytest.FixtureRequest) -> Iterator[SecureClient]:
    """ordersctl on the secured stack through one Kafka path; its topics are deleted afterwards."""
    config = SECURE / str(request.param)
    if not config.is_file():
        pytest.fail(
            f"{config} is missing; start the secured stack: ORDERS_STACK_SECURE=1 scripts/stack up", pytrace=False
        )
    written = tomllib.loads(config.read_text())
    names = f"{TEST_PREFIX}{uuid.uuid4().hex[:10]}"
    # The tests' own database and Redis database, with no password (it comes from the file the settings name);
    # topics and a group of their own.
    dsn = psycopg.conninfo.make_conninfo(written["postgres"]["dsn"], dbname="orders_test")
    redis_url = _on_path(written["redis"]["url"], "/1")
    env = {
        "ORDERS_CONFIG": str(config),
        "ORDERS_LOG__FORMAT": "json",
        "ORDERS_POSTGRES__DSN": dsn,
        "ORDERS_REDIS__URL": redis_url,
        "ORDERS_KAFKA__ORDERS_TOPIC": names,
        "ORDERS_KAFKA__DLQ_TOPIC": f"{names}.dlq",
        "ORDERS_KAFKA__EVENTS_TOPIC": f"{names}.events",
        "ORDERS_KAFKA__GROUP_ID": names,
    }
    settings = _load(config, env)
    pg = psycopg.conninfo.conninfo_to_dict(dsn)
    _require("PgBouncer", str(pg.get("host")), int(pg.get("port") or 5432))
    _require("Redis", urlsplit(redis_url).hostname, urlsplit(redis_url).port)
    host, port = settings.kafka.bootstrap_servers.rsplit(":", 1)
    _require("Kafka", host, int(port))
    outside = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")}
    yield SecureClient(config, outside | env, settings)
    admin: AdminClient = make_admin(settings.kafka)
    for future in admin.delete_topics([names, f"{names}.dlq", f"{names}.events"], operation_timeout=30).values():
        with contextlib.suppress(KafkaException):  # a topic the test never created
            future.result()
