"""Strict settings: unknown keys name the closest valid one, choices ignore case, malformed URLs are refused
without their password, secrets come from files, and each setting says where it came from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ordersctl import masking
from ordersctl.cli.config_cmd import masked_settings
from ordersctl.config import Configuration, KafkaSettings, load_configuration
from ordersctl.errors import ConfigError


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    masking.forget_all()


def load(
    env: dict[str, str] | None = None, toml: Path | None = None, flags: dict[str, dict[str, Any]] | None = None
) -> Configuration:
    return load_configuration(toml, flags, environ=env or {})


def refused(match: str, env: dict[str, str] | None = None, toml: Path | None = None) -> str:
    with pytest.raises(ConfigError, match=match) as caught:
        load(env, toml)
    return str(caught.value)


# ---------------------------------------------------------------- unknown keys


def test_an_unknown_variable_names_the_closest_setting() -> None:
    refused(r"^unknown environment variable ORDERS_POSTGRES__DNS: did you mean postgres\.dsn\?$",
            {"ORDERS_POSTGRES__DNS": "postgresql://db/x"})  # fmt: skip


def test_an_unknown_file_variable_names_the_closest_one() -> None:
    refused(r"ORDERS_POSTGRES__PASWORD_FILE: did you mean postgres\.password_file\?",
            {"ORDERS_POSTGRES__PASWORD_FILE": "/run/secrets/pg"})  # fmt: skip


def test_variables_that_are_not_settings_are_allowed() -> None:
    env = {"ORDERS_STACK_PG_PORT": "1", "ORDERS_TEST_KAFKA": "x", "ORDERS_BENCH_ADMIN_DSN": "x", "ORDERS_CHAOS_X": "1",
           "ORDERS_HELM": "/usr/bin/helm", "ORDERS_HELM_DIR": "/opt/helm"}  # fmt: skip
    assert load(env).settings.postgres.pool_size == 8


def test_an_unknown_toml_section_or_key_names_the_closest(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[kafak]\nbootstrap_servers = "k:9092"\n')
    refused(rf"^unknown section \[kafak\] in {toml}: did you mean kafka\?$", toml=toml)
    toml.write_text('[postgres]\ndns = "postgresql://db/x"\n')
    refused(r"unknown setting postgres\.dns in .*: did you mean postgres\.dsn\?$", toml=toml)
    toml.write_text("top = 1\n")
    refused(r"unknown section \[top\]", toml=toml)


def test_an_unknown_flag_section_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting postgres\.dns"):
        load(flags={"postgres": {"dns": "x"}})


# ---------------------------------------------------------------- choices and values


def test_choices_ignore_case() -> None:
    env = {"ORDERS_KAFKA__SECURITY_PROTOCOL": "sasl_ssl", "ORDERS_KAFKA__SASL_MECHANISM": "scram-sha-512",
           "ORDERS_LOG__LEVEL": "debug", "ORDERS_LOG__FORMAT": "JSON"}  # fmt: skip
    s = load(env).settings
    assert (s.kafka.security_protocol, s.kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (s.log.level, s.log.format) == ("DEBUG", "json")
    assert s.kafka.client_config()["security.protocol"] == "sasl_ssl"


def test_an_invalid_choice_names_the_setting_and_its_source() -> None:
    refused(r"^invalid setting kafka\.security_protocol \(environment ORDERS_KAFKA__SECURITY_PROTOCOL\): Input",
            {"ORDERS_KAFKA__SECURITY_PROTOCOL": "tls"})  # fmt: skip


@pytest.mark.parametrize(
    ("dsn", "problem"),
    [
        ("postgresql://u:s3cr3tpw@host:notaport/db", "port 'notaport' is not a port number"),
        ("postgresql://u:s3cr3tpw@h1:5432,h2:99999/db", "port '99999' is not a port number"),
        ("mysql://u:s3cr3tpw@host/db", "the scheme mysql:// is not postgresql://"),
        ("host=db password=s3cr3tpw port=abc", "port 'abc' is not a port number"),
        ("host=db password=s3cr3tpw junk", "junk"),
        ("   ", "it is empty"),
    ],
)
def test_a_malformed_dsn_is_refused_without_its_password(dsn: str, problem: str) -> None:
    message = refused(r"^invalid setting postgres\.dsn \(environment ORDERS_POSTGRES__DSN\): ",
                      {"ORDERS_POSTGRES__DSN": dsn})  # fmt: skip
    assert problem in message
    assert "s3cr3tpw" not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis://:s3cr3tpw@cache:port/0", "port 'port' is not a port number"),
        ("http://:s3cr3tpw@cache/0", "not a redis://, rediss:// or unix:// URL"),
        ("redis://:s3cr3tpw@cache:6379/zero", "the database 'zero' is not a number"),
    ],
)
def test_a_malformed_redis_url_is_refused_without_its_password(url: str, problem: str) -> None:
    message = refused(r"^invalid setting redis\.url ", {"ORDERS_REDIS__URL": url})
    assert problem in message and "s3cr3tpw" not in message


def test_valid_dsns_and_urls_pass() -> None:
    for dsn in ("postgresql://u:p@[::1]:5432/db?sslmode=verify-full", "postgresql:///db?host=/run/pg",
                "postgresql://h1:5432,h2:5433/db", "host=db port=6432 dbname=x sslmode=require"):  # fmt: skip
        assert load({"ORDERS_POSTGRES__DSN": dsn}).settings.postgres.dsn == dsn
    for url in ("rediss://app:pw@cache:6380/2", "unix:///run/redis.sock?db=1", ""):
        assert load({"ORDERS_REDIS__URL": url}).settings.redis.url == url


def test_an_empty_redis_url_turns_redis_off() -> None:
    assert not load({"ORDERS_REDIS__URL": ""}).settings.redis.enabled
    assert load().settings.redis.enabled


# ---------------------------------------------------------------- secrets from files


def test_a_file_variable_reads_the_value_less_one_newline(tmp_path: Path) -> None:
    (tmp_path / "pg").write_text("pg pass'word\n\n")
    (tmp_path / "dsn").write_text("postgresql://app@db:5432/orders\n")
    c = load(
        {"ORDERS_POSTGRES__PASSWORD_FILE": str(tmp_path / "pg"), "ORDERS_POSTGRES__DSN_FILE": str(tmp_path / "dsn")}
    )
    assert c.settings.postgres.password is not None
    assert c.settings.postgres.password.get_secret_value() == "pg pass'word\n"
    assert c.settings.postgres.dsn == "postgresql://app:pg%20pass%27word%0A@db:5432/orders"  # the password wins
    assert c.sources["postgres.password"] == f"secret file {tmp_path / 'pg'} (ORDERS_POSTGRES__PASSWORD_FILE)"


def test_a_password_replaces_the_one_in_a_key_value_dsn() -> None:
    env = {"ORDERS_POSTGRES__DSN": "host=db password=old dbname=x", "ORDERS_POSTGRES__PASSWORD": "it's\\new"}
    from psycopg import conninfo

    assert conninfo.conninfo_to_dict(load(env).settings.postgres.dsn) == {"host": "db", "dbname": "x",
                                                                          "password": "it's\\new"}  # fmt: skip


@pytest.mark.parametrize(
    "dsn",
    ["postgresql://u:old@db/x?password=old&sslmode=require", "postgresql://u@db/x?sslmode=require&password=old"],
)
def test_a_password_replaces_one_in_the_query_too(dsn: str) -> None:
    from psycopg import conninfo

    params = conninfo.conninfo_to_dict(
        load({"ORDERS_POSTGRES__DSN": dsn, "ORDERS_POSTGRES__PASSWORD": "new"}).settings.postgres.dsn
    )
    assert (params["password"], params["sslmode"], params["user"]) == ("new", "require", "u")


def test_a_redis_password_replaces_the_urls() -> None:
    env = {"ORDERS_REDIS__URL": "rediss://app:old@cache:6380/0", "ORDERS_REDIS__PASSWORD": "n@w/pw"}
    assert load(env).settings.redis.url == "rediss://app:n%40w%2Fpw@cache:6380/0"
    env = {"ORDERS_REDIS__URL": "redis://cache/0", "ORDERS_REDIS__PASSWORD": "newpw"}
    assert load(env).settings.redis.url == "redis://:newpw@cache/0"


def test_a_missing_secret_file_names_the_setting_and_the_path_only(tmp_path: Path) -> None:
    message = refused(r"^cannot read kafka\.sasl_password from .*/nope \(ORDERS_KAFKA__SASL_PASSWORD_FILE\): No such",
                      {"ORDERS_KAFKA__SASL_PASSWORD_FILE": str(tmp_path / "nope")})  # fmt: skip
    assert message.count("\n") == 0


def test_kafka_extra_may_come_from_a_json_file(tmp_path: Path) -> None:
    (tmp_path / "extra.json").write_text('{"sasl.oauthbearer.config": "clientSecret=from-a-file", "linger.ms": 9}\n')
    c = load({"ORDERS_KAFKA__EXTRA_FILE": str(tmp_path / "extra.json")})
    assert c.settings.kafka.extra == {"sasl.oauthbearer.config": "clientSecret=from-a-file", "linger.ms": "9"}
    assert masking.mask_text("from-a-file") == "***"
    (tmp_path / "extra.json").write_text("[1]")
    refused(r"invalid setting kafka\.extra \(ORDERS_KAFKA__EXTRA_FILE\): not a JSON object",
            {"ORDERS_KAFKA__EXTRA_FILE": str(tmp_path / "extra.json")})  # fmt: skip


def test_only_secrets_and_urls_come_from_file_variables() -> None:
    refused(r"unknown environment variable ORDERS_API__PORT_FILE", {"ORDERS_API__PORT_FILE": "/x"})


def test_toml_file_settings_are_relative_to_the_toml_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "sasl").write_text("kafka-pw\n")
    toml = tmp_path / "c.toml"
    toml.write_text('[kafka]\nsasl_password_file = "secrets/sasl"\nsasl_username = "app"\n')
    c = load(toml=toml)
    assert c.settings.kafka.client_config()["sasl.password"] == "kafka-pw"
    assert c.sources["kafka.sasl_password"] == f"secret file {tmp_path / 'secrets/sasl'} ({toml})"
    assert c.sources["kafka.sasl_username"] == f"file {toml}"
    toml.write_text('[kafka]\nsasl_password_file = "secrets/sasl"\nsasl_password = "x"\n')
    refused(r"set kafka\.sasl_password or kafka\.sasl_password_file, not both", toml=toml)


def test_a_secrets_directory_holds_one_file_per_setting(tmp_path: Path) -> None:
    (tmp_path / "postgres.password").write_text("from-dir\n")
    (tmp_path / "kafka.sasl_password").write_text("kafka-from-dir")
    (tmp_path / "..data").mkdir()  # Kubernetes' own entries are skipped
    (tmp_path / "..2026_12_04").write_text("")
    c = load({"ORDERS_SECRETS_DIR": str(tmp_path)})
    assert c.settings.kafka.sasl_password is not None
    assert c.settings.kafka.sasl_password.get_secret_value() == "kafka-from-dir"
    assert ":from-dir@" in c.settings.postgres.dsn
    assert c.sources["postgres.password"] == f"secrets file {tmp_path / 'postgres.password'}"
    (tmp_path / "postgres.pasword").write_text("x")
    refused(r"unknown secrets file .*postgres\.pasword .*: did you mean postgres\.password\?",
            {"ORDERS_SECRETS_DIR": str(tmp_path)})  # fmt: skip


def test_precedence_flag_env_env_file_secrets_dir_toml_default(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "api.token").write_text("from-dir")
    (tmp_path / "file").write_text("from-env-file")
    toml = tmp_path / "c.toml"
    toml.write_text('[api]\ntoken = "from-toml"\n')
    layers: list[tuple[str, dict[str, str], dict[str, dict[str, Any]] | None]] = [
        ("from-toml", {}, None),
        ("from-dir", {"ORDERS_SECRETS_DIR": str(tmp_path / "dir")}, None),
        ("from-env-file", {"ORDERS_API__TOKEN_FILE": str(tmp_path / "file")}, None),
        ("from-env", {"ORDERS_API__TOKEN": "from-env"}, None),
        ("from-flag", {}, {"api": {"token": "from-flag"}}),
    ]
    env: dict[str, str] = {}
    for expected, more, flags in layers:
        env |= more
        token = load_configuration(toml, flags, environ=env).settings.api.token
        assert token is not None and token.get_secret_value() == expected
    assert load().sources["api.token"] == "default"


def test_config_show_data_never_holds_a_secret(tmp_path: Path) -> None:
    (tmp_path / "kafka.ssl_key_password").write_text("keypw-from-dir")
    env = {"ORDERS_SECRETS_DIR": str(tmp_path), "ORDERS_REDIS__PASSWORD": "redis-pw-1",
           "ORDERS_POSTGRES__DSN": "host=db password='pg pw 1' dbname=x",
           "ORDERS_KAFKA__EXTRA": '{"sasl.oauthbearer.config": "clientId=a clientSecret=oauth-secret-1",'
                                  ' "sasl.jaas.config": "x required password=\\"jaas-pw-1\\";",'
                                  ' "ssl.keystore.password": "ks-pw-1", "socket.timeout.ms": 100}'}  # fmt: skip
    c = load(env)
    text = str(masked_settings(c.settings)) + str(c.sources)
    for secret in ("keypw-from-dir", "redis-pw-1", "pg pw 1", "oauth-secret-1", "jaas-pw-1", "ks-pw-1"):
        assert secret not in text
    assert c.settings.kafka.extra["socket.timeout.ms"] == "100"  # numbers are accepted as text
    # ... and every one of them is masked by value from now on, wherever it appears.
    for secret in ("keypw-from-dir", "redis-pw-1", "pg pw 1", "oauth-secret-1", "jaas-pw-1", "ks-pw-1"):
        assert masking.mask_text(f"a {secret} b") == "a *** b"


# ---------------------------------------------------------------- kafka.extra


@pytest.mark.parametrize(
    "key",
    ["enable.auto.commit", "enable.auto.offset.store", "isolation.level", "enable.idempotence", "acks",
     "auto.offset.reset", "enable.partition.eof", "transactional.id", "group.id", "group.instance.id",
     " ACKS"],
)  # fmt: skip
def test_extra_keys_that_break_the_guarantee_are_refused(key: str) -> None:
    message = refused(rf"^invalid setting kafka\.extra \(environment ORDERS_KAFKA__EXTRA\): {key} is refused: ",
                      {"ORDERS_KAFKA__EXTRA": f'{{"{key}": "x"}}'})  # fmt: skip
    assert len(message.split(": ", 2)[2]) > 20  # says why


def test_the_consumer_group_protocol_refuses_what_the_broker_owns() -> None:
    for key in ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"):
        refused(rf"{key} is refused with group\.protocol=consumer",
                {"ORDERS_KAFKA__EXTRA": f'{{"group.protocol": "consumer", "{key}": "1"}}'})  # fmt: skip
    k = KafkaSettings(extra={"group.protocol": "consumer"})
    assert k.consumer_group_protocol and k.incremental_rebalance


@pytest.mark.parametrize("value", ["0", "-1", "soon", "0.5"])
def test_statistics_turned_off_is_refused_because_the_lag_comes_from_them(value: str) -> None:
    refused(rf"statistics\.interval\.ms={value} is refused: the worker's lag",
            {"ORDERS_KAFKA__EXTRA": f'{{"statistics.interval.ms": "{value}"}}'})  # fmt: skip
    assert KafkaSettings(extra={"statistics.interval.ms": 5000}).extra == {"statistics.interval.ms": "5000"}


def test_incremental_rebalance_follows_the_assignment_strategy() -> None:
    assert not KafkaSettings().incremental_rebalance
    assert not KafkaSettings(extra={"partition.assignment.strategy": "range,roundrobin"}).incremental_rebalance
    assert KafkaSettings(extra={"partition.assignment.strategy": "cooperative-sticky"}).incremental_rebalance
