"""Settings: the models, their loading and their masking. The environment and the files are read by
``settings_sources`` alone, on behalf of ``load_settings``.

Sources, strongest first: CLI flags (passed as overrides) > environment ``ORDERS_<SECTION>__<FIELD>`` > a file
named by ``ORDERS_<SECTION>__<FIELD>_FILE`` > the secrets directory ``ORDERS_SECRETS_DIR`` > TOML file
(``--config`` or ``ORDERS_CONFIG``) > defaults that point at the local stack (scripts/stack). Unknown keys are
errors; see ``settings_sources``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ordersctl import masking
from ordersctl.errors import ConfigError
from ordersctl.masking import MASK, mask_url
from ordersctl.settings_kafka import KafkaSettings
from ordersctl.settings_otel import OtelSettings
from ordersctl.settings_postgres import PostgresSettings
from ordersctl.settings_sources import CONFIG_ENV, DEFAULT, Catalog, gather, is_url_setting, lower_choice, upper_choice
from ordersctl.settings_urls import redis_url_problem, with_password

__all__ = ["MASK", "KafkaSettings", "PostgresSettings", "Settings", "load_settings", "mask_url", "settings_env"]


LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(upper_choice)]
LogFormat = Annotated[Literal["auto", "json", "console"], BeforeValidator(lower_choice)]


class RedisSettings(BaseModel):
    """Redis cache connection; an empty ``url`` runs without Redis. ``password``, when set, replaces the URL's."""

    model_config = ConfigDict(extra="forbid")

    url: str = "redis://127.0.0.1:63799/0"
    password: SecretStr | None = None
    ttl_seconds: int = Field(default=24 * 3600, ge=1)
    timeout_seconds: float = Field(default=0.25, gt=0)

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    @field_validator("url")
    @classmethod
    def _url_parses(cls, url: str) -> str:
        url = url.strip()
        problem = redis_url_problem(url) if url else None
        if problem:
            raise ValueError(f"{problem}: {mask_url(url)}")
        return url

    @model_validator(mode="after")
    def _password_in_the_url(self) -> RedisSettings:
        if self.password is not None and self.url:
            self.url = with_password(self.url, self.password.get_secret_value(), conninfo=False)
        return self


class ApiSettings(BaseModel):
    """HTTP API of ``ordersctl serve``."""

    model_config = ConfigDict(extra="forbid")

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
    # After SIGTERM: readiness answers 503 at once, and serve goes on answering every request for this long (the
    # platform's time to stop routing to it); then it stops accepting, finishes what is in flight and exits. 0: no wait.
    drain_seconds: float = Field(default=10.0, ge=0, le=300)


class PipelineSettings(BaseModel):
    """Rules and tuning of the consume pipeline."""

    model_config = ConfigDict(extra="forbid")

    max_items: int = Field(default=1000, ge=1)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    # Batches being written to PostgreSQL at once by one worker, each in its own transaction on its own
    # connection; they still complete (dead letters, offset commit) strictly in the order they were read.
    batches_in_flight: int = Field(default=2, ge=1, le=8)
    # The longest a batch fills (pipeline/worker.py: group commit): with no store running it starts at once; while
    # one runs it fills until that store is done, or full, or this long. Also how long an idle worker's fetch waits.
    max_wait_ms: int = Field(default=50, ge=1, le=10_000)
    retry_initial_seconds: float = Field(default=0.2, gt=0)
    retry_max_seconds: float = Field(default=10.0, gt=0)
    # Where worker metrics listen (worker i on --metrics-port + i): loopback by default; 0.0.0.0 in a container,
    # whose published ports reach only addresses other than loopback.
    metrics_host: str = "127.0.0.1"
    # consume's /livez and /readyz, served by its supervisor on metrics_host (one port per pod for the probes);
    # None: not served (--health-port). 0: any free port (it is logged).
    health_port: int | None = Field(default=None, ge=0, le=65535)
    # /livez fails once a worker has held partitions with lag for this long without handling a message or
    # retrying anything (hung, or stopped).
    stall_seconds: float = Field(default=60.0, gt=0)
    # A crash loop stops consume (exit 1): a worker that died more than crash_loop_restarts times within
    # crash_loop_window_seconds, each time less than 30 s after its start, is not restarted again. 0: for ever.
    crash_loop_restarts: int = Field(default=5, ge=0)
    crash_loop_window_seconds: float = Field(default=300.0, gt=0)


class LogSettings(BaseModel):
    """Logging: JSON lines off a terminal, Rich on a terminal, unless a format is forced."""

    model_config = ConfigDict(extra="forbid")

    level: LogLevel = "INFO"
    format: LogFormat = "auto"


class Settings(BaseModel):
    """Every setting of ordersctl, in sections. Built by ``load_settings``, which reads the sources itself
    (strictly, and noting where each value came from); constructed directly, only its arguments count."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    otel: OtelSettings = Field(default_factory=OtelSettings)

    @model_validator(mode="after")
    def _pool_fits_the_worker(self) -> Settings:
        # A consume worker holds one connection per batch in flight plus one for its outbox relay.
        if self.postgres.pool_size < self.pipeline.batches_in_flight + 1:
            raise ValueError(
                f"postgres.pool_size ({self.postgres.pool_size}) must be at least pipeline.batches_in_flight + 1"
                f" ({self.pipeline.batches_in_flight + 1}): one connection per batch in flight and one for events"
            )
        return self


@dataclass(frozen=True)
class Configuration:
    """The effective settings and where each came from (``postgres.dsn`` -> "environment ORDERS_POSTGRES__DSN")."""

    settings: Settings
    sources: dict[str, str]


def load_configuration(
    config_file: Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Configuration:
    """The effective settings from every source, each setting's source, and the secret values remembered for
    masking in this process. Any mistake is a ConfigError: one line, never a secret."""
    environ = os.environ if environ is None else environ
    path = config_file or (Path(environ[CONFIG_ENV]) if environ.get(CONFIG_ENV) else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    catalog = Catalog.of(Settings)
    gathered = gather(catalog, path, overrides or {}, environ)
    sources = {key: gathered.sources.get(key, DEFAULT) for key in catalog.annotations}
    try:
        settings = Settings.model_validate(gathered.nested())
    except ValidationError as exc:
        raise _config_error(exc, sources) from None
    masking.remember(secret_values(settings))
    return Configuration(settings, sources)


def log_format_given(flag: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``log.format`` as the flag or the environment give it, read without loading the settings: for the line
    about why they could not be loaded (the TOML file's word is not known then)."""
    environ = os.environ if environ is None else environ
    given = (flag or environ.get("ORDERS_LOG__FORMAT") or "auto").lower()
    return given if given in get_args(get_args(LogFormat)[0]) else "auto"


def load_settings(
    config_file: Path | None = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Settings:
    """Build the effective settings; ``overrides`` are CLI flags as nested sections."""
    return load_configuration(config_file, overrides).settings


def _config_error(exc: ValidationError, sources: dict[str, str]) -> ConfigError:
    """One line for the first problem, naming the setting and its source; never the value given."""
    first = exc.errors()[0]
    message = str(first["msg"]).removeprefix("Value error, ")
    loc = [str(p) for p in first["loc"]]
    if not loc:  # a rule across settings
        return ConfigError(f"invalid settings: {message}")
    key = ".".join(loc[:2])
    source = sources.get(key)
    return ConfigError(f"invalid setting {key}{f' ({source})' if source else ''}: {message}")


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


def secret_values(settings: Settings) -> list[str]:
    """Every secret value the settings hold: secret settings, the passwords of URLs and DSNs, secret-bearing
    librdkafka properties (and the secrets inside them)."""
    found: list[str] = []
    for _section, model in settings:
        for name, value in model:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, str) and is_url_setting(name):
                found += masking.secrets_in_url(value)
    for name, value in settings.kafka.extra.items():
        found += masking.secrets_in_property(name, value)
    # The local stack's password is published (README, defaults): masked by name like any password, but masking
    # it by value would blank out every "ordersctl" in the logs and hide nothing.
    published = set(masking.secrets_in_url(PostgresSettings.model_fields["dsn"].default))
    return [value for value in found if value not in published]


def for_process(settings: Settings, name: str) -> Settings:
    """These settings with ``postgres.application_name`` = ``name`` (ordersctl-serve, ordersctl-consume-w1, ...),
    unless the user chose one."""
    if "application_name" in settings.postgres.model_fields_set:
        return settings
    postgres = settings.postgres.model_copy(update={"application_name": name})
    return settings.model_copy(update={"postgres": postgres})
