from pathlib import Path

import pytest

from ordersctl.cli.config_cmd import masked_settings
from ordersctl.config import load_settings, mask_url
from ordersctl.errors import ConfigError


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("ORDERS_"):
            monkeypatch.delenv(key)
    s = load_settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:19092"
    assert s.kafka.orders_topic == "orders"
    assert s.kafka.dlq_topic == "orders.dlq"
    assert s.kafka.events_topic == "orders.events"
    assert "127.0.0.1:54329/orders" in s.postgres.dsn


def test_precedence_flags_over_env_over_toml_over_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[kafka]\ngroup_id = "from-toml"\norders_topic = "toml-orders"\n[redis]\nttl_seconds = 7\n')
    monkeypatch.setenv("ORDERS_CONFIG", str(toml))
    monkeypatch.setenv("ORDERS_KAFKA__GROUP_ID", "from-env")
    monkeypatch.setenv("ORDERS_REDIS__TTL_SECONDS", "9")
    s = load_settings(overrides={"redis": {"ttl_seconds": 11}})
    assert s.kafka.orders_topic == "toml-orders"  # toml beats default
    assert s.kafka.group_id == "from-env"  # env beats toml
    assert s.redis.ttl_seconds == 11  # flag beats env


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml")


def test_pool_must_fit_the_batches_in_flight_and_the_relay() -> None:
    assert load_settings(overrides={"postgres": {"pool_size": 3}, "pipeline": {"batches_in_flight": 2}})
    with pytest.raises(ConfigError, match=r"^invalid settings: postgres\.pool_size \(2\) must be at least"):
        load_settings(overrides={"postgres": {"pool_size": 2}, "pipeline": {"batches_in_flight": 2}})


def test_invalid_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_POSTGRES__POOL_SIZE", "zero")
    with pytest.raises(ConfigError, match=r"postgres\.pool_size"):
        load_settings()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://u:s3cr3t@db:5432/orders", "postgresql://u:***@db:5432/orders"),
        ("redis://:s3cr3t@cache:6379/0", "redis://:***@cache:6379/0"),
        ("host=db user=u password=s3cr3t dbname=x", "host=db user=u password=*** dbname=x"),
        ("host=db password='s3 cr3t' dbname=x", "host=db password=*** dbname=x"),
        (
            "postgresql://db/orders?password=s3cr3t&sslmode=require",
            "postgresql://db/orders?password=***&sslmode=require",
        ),
        ("postgresql://u@db/orders", "postgresql://u@db/orders"),
    ],
)
def test_mask_url(raw: str, expected: str) -> None:
    assert mask_url(raw) == expected


def test_masked_settings_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDERS_KAFKA__SASL_PASSWORD", "kafkapw")
    monkeypatch.setenv("ORDERS_API__TOKEN", "tok3n")
    s = load_settings(
        overrides={
            "postgres": {"dsn": "postgresql://u:pgpw@h/x"},
            "redis": {"url": "redis://:redispw@h/0"},
            "kafka": {"extra": {"ssl.key.password": "keypw", "socket.timeout.ms": "100"}},
        }
    )
    text = str(masked_settings(s))
    for secret in ("kafkapw", "tok3n", "pgpw", "redispw", "keypw"):
        assert secret not in text
    assert "socket.timeout.ms" in text and "'100'" in text


def test_kafka_client_config_passes_security_options_through() -> None:
    s = load_settings(
        overrides={
            "kafka": {
                "security_protocol": "SASL_SSL",
                "sasl_mechanism": "SCRAM-SHA-512",
                "sasl_username": "svc",
                "sasl_password": "pw",
                "extra": {"client.id": "me"},
            }
        }
    )
    conf = s.kafka.client_config()
    assert conf["security.protocol"] == "sasl_ssl"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.password"] == "pw"
    assert conf["client.id"] == "me"


def test_settings_env_round_trips_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from ordersctl.config import settings_env

    original = load_settings(
        overrides={
            "kafka": {"sasl_password": "pw", "extra": {"client.id": "x"}, "orders_topic": "o2"},
            "api": {"token": "t", "port": 9999},
            "pipeline": {"retry_initial_seconds": 0.05},
        }
    )
    for key, value in settings_env(original).items():
        monkeypatch.setenv(key, value)
    assert load_settings() == original
