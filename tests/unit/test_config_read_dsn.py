"""``postgres.read_dsn`` (#21 item 8): an optional DSN for serve's order reads, parsed strictly like
``postgres.dsn``, masked everywhere, from files like any DSN, given the same liveness defaults and application
name; the Runtime builds its pool apart from the primary's, and only when it is set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ordersctl import masking
from ordersctl.adapters.postgres import connect_kwargs, liveness_params
from ordersctl.cli.config_cmd import masked_settings
from ordersctl.config import Configuration, Settings, for_process, load_configuration, settings_env
from ordersctl.errors import ConfigError
from ordersctl.runtime import Runtime

READ = "postgresql://reader:read-secret-77@replica:5432/orders"


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    masking.forget_all()


def load(env: dict[str, str], toml: Path | None = None) -> Configuration:
    return load_configuration(toml, None, environ=env)


def test_without_a_read_dsn_reads_use_the_dsn() -> None:
    postgres = load({}).settings.postgres
    assert postgres.read_dsn is None and postgres.for_reads() is postgres
    assert load({"ORDERS_POSTGRES__READ_DSN": "  "}).settings.postgres.read_dsn is None  # empty: none


def test_the_read_settings_are_the_dsns_with_the_read_dsn_in_place() -> None:
    postgres = load({"ORDERS_POSTGRES__READ_DSN": READ, "ORDERS_POSTGRES__POOL_SIZE": "5"}).settings.postgres
    reads = postgres.for_reads()
    assert (reads.dsn, reads.read_dsn, reads.pool_size) == (READ, None, 5)
    assert postgres.dsn != READ  # the primary's is untouched


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("postgresql://u:s3cr3tpw@replica:notaport/db", "port 'notaport' is not a port number"),
        ("mysql://u:s3cr3tpw@replica/db", "the scheme mysql:// is not postgresql://"),
        ("host=replica password=s3cr3tpw junk", "junk"),
    ],
)
def test_a_malformed_read_dsn_is_refused_without_its_password(dsn: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"ORDERS_POSTGRES__READ_DSN": dsn})
    message = str(caught.value)
    assert message.startswith("invalid setting postgres.read_dsn (environment ORDERS_POSTGRES__READ_DSN): ")
    assert problem in message and "s3cr3tpw" not in message


def test_the_read_dsn_is_masked_in_config_show_and_by_value() -> None:
    configuration = load({"ORDERS_POSTGRES__READ_DSN": READ})
    shown = masked_settings(configuration.settings)["postgres"]["read_dsn"]
    assert shown == "postgresql://reader:***@replica:5432/orders"
    assert configuration.sources["postgres.read_dsn"] == "environment ORDERS_POSTGRES__READ_DSN"
    assert masking.mask_text("refused: read-secret-77") == "refused: ***"  # log lines, error lines, HTTP bodies


def test_the_read_dsn_comes_from_a_file_variable_a_secrets_directory_or_the_toml_file(tmp_path: Path) -> None:
    (tmp_path / "read").write_text(READ + "\n")
    from_variable = load({"ORDERS_POSTGRES__READ_DSN_FILE": str(tmp_path / "read")})
    assert from_variable.settings.postgres.read_dsn == READ
    assert from_variable.sources["postgres.read_dsn"].startswith("secret file ")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "postgres.read_dsn").write_text(READ)
    assert load({"ORDERS_SECRETS_DIR": str(tmp_path / "secrets")}).settings.postgres.read_dsn == READ
    toml = tmp_path / "c.toml"
    toml.write_text('[postgres]\nread_dsn_file = "read"\n')
    assert load({}, toml).settings.postgres.read_dsn == READ
    assert masking.mask_text(READ) == "postgresql://reader:***@replica:5432/orders"


def test_the_password_setting_fills_a_read_dsn_without_one_of_its_own() -> None:
    env = {"ORDERS_POSTGRES__PASSWORD": "shared-pw-1", "ORDERS_POSTGRES__READ_DSN": "postgresql://app@replica/orders"}
    assert load(env).settings.postgres.read_dsn == "postgresql://app:shared-pw-1@replica/orders"
    own = load(env | {"ORDERS_POSTGRES__READ_DSN": READ}).settings.postgres
    assert own.read_dsn == READ and "shared-pw-1" in own.dsn


def test_the_read_dsn_gets_the_liveness_defaults_and_the_process_name() -> None:
    settings = load({"ORDERS_POSTGRES__READ_DSN": READ}).settings
    reads = connect_kwargs(for_process(settings, "ordersctl-serve").postgres.for_reads())
    assert reads["application_name"] == "ordersctl-serve"
    assert {name: reads[name] for name in liveness_params(settings.postgres)} == liveness_params(settings.postgres)
    own = load({"ORDERS_POSTGRES__READ_DSN": READ + "?tcp_user_timeout=30000&application_name=replica-reader"})
    kwargs = connect_kwargs(for_process(own.settings, "ordersctl-serve").postgres.for_reads())
    assert "tcp_user_timeout" not in kwargs and "application_name" not in kwargs  # the DSN's own win


def test_child_processes_get_the_read_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load({"ORDERS_POSTGRES__READ_DSN": READ}).settings
    assert settings_env(settings)["ORDERS_POSTGRES__READ_DSN"] == READ
    assert "ORDERS_POSTGRES__READ_DSN" not in settings_env(Settings())


class FakePool:
    """Stands for a ConnectionPool: counts its closing."""

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_the_runtime_builds_a_read_pool_only_for_a_read_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    from ordersctl.adapters import postgres as pg_adapter

    built: list[tuple[str, str]] = []

    def make_pool(settings: Any, name: str = "ordersctl") -> FakePool:
        built.append((settings.dsn, name))
        return FakePool()

    monkeypatch.setattr(pg_adapter, "make_pool", make_pool)
    plain = Runtime(Settings())
    assert plain.pg_read_pool is plain.pg_pool and len(built) == 1
    pool = plain.pg_pool
    plain.close()
    assert pool.closed == 1  # the one pool, closed once
    built.clear()
    split = Runtime(load({"ORDERS_POSTGRES__READ_DSN": READ}).settings)
    assert split.pg_read_pool is not split.pg_pool
    assert sorted(built) == sorted([(READ, "ordersctl-read"), (split.settings.postgres.dsn, "ordersctl")])


def test_serve_checks_the_credentials_of_both_dsns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refused credentials on the read DSN would answer 503 for ever: serve's check (at start, then every 10 s)
    asks both; an outage of either is not its business."""
    from ordersctl.adapters import postgres as pg_adapter
    from ordersctl.errors import AccessDenied, ServiceUnavailable

    asked: list[str] = []

    def connect(settings: Any, **_: Any) -> Any:
        asked.append(settings.dsn)
        if settings.dsn == READ:
            raise AccessDenied("PostgreSQL", "access denied at replica:5432/orders (password authentication failed)")
        raise ServiceUnavailable("PostgreSQL", "db:5432/orders", "connection refused")

    monkeypatch.setattr(pg_adapter, "connect", connect)
    settings = load({"ORDERS_POSTGRES__READ_DSN": READ}).settings.postgres
    with pytest.raises(AccessDenied, match="replica"):
        pg_adapter.check_access(settings)
    assert asked == [settings.dsn, READ]
    asked.clear()
    pg_adapter.check_access(load({}).settings.postgres)  # one DSN, down: not refused
    assert len(asked) == 1
