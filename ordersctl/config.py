"""Settings: the only place that reads the environment.

Sources, strongest first: CLI flags (passed as overrides) > environment ``ORDERS_<SECTION>__<FIELD>`` >
TOML file (``--config`` or ``ORDERS_CONFIG``) > defaults that point at the local stack (scripts/stack).
"""

from __future__ import annotations

import json
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ordersctl.errors import ConfigError

MASK = "***"
_toml_file: ContextVar[Path | None] = ContextVar("ordersctl_toml_file", default=None)


class KafkaSettings(BaseModel):
    """Kafka connection, security pass-through to librdkafka, topic names and the consumer group."""

    bootstrap_servers: str = "127.0.0.1:19092"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    # Any other librdkafka property, e.g. {"socket.timeout.ms": "10000"}.
    extra: dict[str, str] = Field(default_factory=dict)
    orders_topic: str = "orders"
    dlq_topic: str = "orders.dlq"
    events_topic: str = "orders.events"
    group_id: str = "ordersctl"

    def client_config(self) -> dict[str, str]:
        """The librdkafka properties shared by every client."""
        conf: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol.lower(),
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        conf.update(self.extra)
        return conf


class PostgresSettings(BaseModel):
    """PostgreSQL connection."""

    dsn: str = "postgresql://ordersctl:ordersctl@127.0.0.1:54329/orders"
    pool_size: int = Field(default=8, ge=1, le=200)
    connect_timeout: int = Field(default=5, ge=1, le=300)
    # Server-side bounds on every session (milliseconds, 0 = none). A statement or lock wait cut short is a
    # transient failure: retried, never dead-lettered. An idle transaction left open (a stuck client) loses
    # its session, so its row locks cannot outlive it.
    statement_timeout_ms: int = Field(default=60_000, ge=0)
    lock_timeout_ms: int = Field(default=10_000, ge=0)
    idle_in_transaction_session_timeout_ms: int = Field(default=60_000, ge=0)
    # "transaction": connections go through a transaction pooler (PgBouncer pool_mode=transaction), which gives
    # each transaction any server session: no startup options (the timeouts above are set on the role by
    # `db migrate` instead) and no prepared statements. "none": a direct connection or a session pooler.
    pooler: Literal["none", "transaction"] = "none"
    # What pg_stat_activity shows; when not set, each process names itself (ordersctl-serve,
    # ordersctl-consume-w1, ...).
    application_name: str = Field(default="ordersctl", max_length=63)


class RedisSettings(BaseModel):
    """Redis cache connection."""

    url: str = "redis://127.0.0.1:63799/0"
    ttl_seconds: int = Field(default=24 * 3600, ge=1)
    timeout_seconds: float = Field(default=0.25, gt=0)


class ApiSettings(BaseModel):
    """HTTP API of ``ordersctl serve``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    token: SecretStr | None = None
    threads: int = Field(default=8, ge=1, le=256)
    processes: int = Field(default=1, ge=1, le=64)
    warm_limit: int = Field(default=1000, ge=0)
    memory_cache_size: int = Field(default=10_000, ge=0)
    memory_cache_ttl_seconds: float = Field(default=300, gt=0)
    # How long a request waits for a PostgreSQL connection before it answers 503. The pool's own wait (twice the
    # connect timeout) outlasts what a client waits: in a PostgreSQL crash, readers got no answer at all.
    db_wait_seconds: float = Field(default=2.0, gt=0, le=60)


class PipelineSettings(BaseModel):
    """Rules and tuning of the consume pipeline."""

    max_items: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    # Batches being written to PostgreSQL at once by one worker, each in its own transaction on its own
    # connection; they still complete (dead letters, offset commit) strictly in the order they were read.
    batches_in_flight: int = Field(default=2, ge=1, le=8)
    # How long a batch waits to fill when the partitions have nothing more: a backlog fills batches at once, a
    # trickle should not wait (it is latency from the order's arrival to its event).
    max_wait_ms: int = Field(default=50, ge=1, le=10_000)
    retry_initial_seconds: float = Field(default=0.2, gt=0)
    retry_max_seconds: float = Field(default=10.0, gt=0)
    # Where worker metrics listen (worker i on --metrics-port + i): loopback by default; 0.0.0.0 in a container,
    # whose published ports reach only addresses other than loopback.
    metrics_host: str = "127.0.0.1"


class LogSettings(BaseModel):
    """Logging: JSON lines off a terminal, Rich on a terminal, unless a format is forced."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    """Every setting of ordersctl, in sections."""

    model_config = SettingsConfigDict(env_prefix="ORDERS_", env_nested_delimiter="__", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @model_validator(mode="after")
    def _pool_fits_the_worker(self) -> Settings:
        # A consume worker holds one connection per batch in flight plus one for its outbox relay.
        if self.postgres.pool_size < self.pipeline.batches_in_flight + 1:
            raise ValueError(
                f"postgres.pool_size ({self.postgres.pool_size}) must be at least pipeline.batches_in_flight + 1"
                f" ({self.pipeline.batches_in_flight + 1}): one connection per batch in flight and one for events"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _toml_file.get()
        if toml_file is None:
            return (init_settings, env_settings)
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file))


def load_settings(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Build the effective settings; ``overrides`` are CLI flags as nested sections."""
    path = config_file or (Path(os.environ["ORDERS_CONFIG"]) if os.environ.get("ORDERS_CONFIG") else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    token = _toml_file.set(path)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        if not where:  # a rule across settings
            raise ConfigError(f"invalid settings: {first['msg'].removeprefix('Value error, ')}") from None
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    finally:
        _toml_file.reset(token)


def settings_env(settings: Settings) -> dict[str, str]:
    """``ORDERS_*`` variables that make a child process load exactly these settings (secrets included)."""
    env: dict[str, str] = {}
    for section, model in settings:
        for name, value in model:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, dict):
                value = json.dumps(value)
            env[f"ORDERS_{section.upper()}__{name.upper()}"] = str(value)
    return env


_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)


def mask_url(value: str) -> str:
    """Hide the password of a URL (``scheme://user:pw@host``) or a libpq ``key=value`` DSN."""
    if "://" in value:
        parts = urlsplit(value)
        if parts.password is not None:
            host = parts.hostname or ""
            if ":" in host:  # IPv6 literal
                host = f"[{host}]"
            port = f":{parts.port}" if parts.port else ""
            user = parts.username or ""
            netloc = f"{user}:{MASK}@{host}{port}"
            value = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
        return re.sub(r"(password=)[^&]*", rf"\g<1>{MASK}", value, flags=re.IGNORECASE)
    return _KV_PASSWORD.sub(rf"\g<1>{MASK}", value)


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret and every password in a URL masked."""
    data = settings.model_dump(mode="json")
    data["postgres"]["dsn"] = mask_url(settings.postgres.dsn)
    data["redis"]["url"] = mask_url(settings.redis.url)
    for section, model in (("kafka", settings.kafka), ("api", settings.api)):
        for name, value in model:
            if isinstance(value, SecretStr):
                data[section][name] = MASK
    data["kafka"]["extra"] = {
        k: (MASK if any(w in k.lower() for w in ("password", "secret", "token", "key")) else v)
        for k, v in settings.kafka.extra.items()
    }
    return data
