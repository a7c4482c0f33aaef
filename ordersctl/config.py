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
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

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
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ordersctl import masking
from ordersctl.errors import ConfigError
from ordersctl.masking import MASK, mask_url
from ordersctl.settings_sources import CONFIG_ENV, DEFAULT, Catalog, gather, is_url_setting

__all__ = ["MASK", "Settings", "load_settings", "mask_url", "masked_settings", "settings_env"]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


# Choices are case-insensitive: "sasl_ssl" is SASL_SSL.
SecurityProtocol = Annotated[Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)]
SaslMechanism = Annotated[
    Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"], BeforeValidator(_upper)
]
LogLevel = Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)]
LogFormat = Annotated[Literal["auto", "json", "console"], BeforeValidator(_lower)]

_DELIVERY = "offsets are committed by ordersctl only after the batch is stored and its dead letters confirmed"
# librdkafka properties that would break the delivery guarantee, or that other settings own, and why: refused
# in kafka.extra (exit 2) rather than silently overridden.
REFUSED_KAFKA_PROPERTIES: dict[str, str] = {
    "enable.auto.commit": _DELIVERY,
    "auto.commit.enable": _DELIVERY,
    "enable.auto.offset.store": _DELIVERY,
    "isolation.level": "the consumer reads committed records only (read_committed): an aborted one is never stored",
    "auto.offset.reset": "a new group starts at the earliest offset: 'latest' would skip the orders sent before it",
    "enable.partition.eof": "the worker reads messages and errors only; end-of-partition events would be taken "
    "for errors",
    "enable.idempotence": "producers are idempotent: a retried send never duplicates or reorders a message",
    "acks": "a send is confirmed once every in-sync replica has it (acks=all), so losing a broker loses nothing",
    "request.required.acks": "a send is confirmed once every in-sync replica has it (acks=all)",
    "transactional.id": "ordersctl's producers are idempotent, not transactional: they never begin a transaction",
    "group.id": "set kafka.group_id: status, trace and dlq read the group by that name",
    "group.instance.id": "set kafka.static_membership: one id for every worker would fence all of them but one",
}
# Under the consumer group protocol of KIP-848 the broker owns these; librdkafka refuses them.
BROKER_OWNED_WITH_CONSUMER_PROTOCOL = ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy")


def _property_text(value: object) -> object:
    """A librdkafka property as text: TOML and JSON numbers and booleans are accepted (10000, true)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


class KafkaSettings(BaseModel):
    """Kafka connection, security pass-through to librdkafka, topic names and the consumer group."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str = "127.0.0.1:19092"
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    # Any other librdkafka property, e.g. {"socket.timeout.ms": "10000"}; applied after ordersctl's own defaults,
    # so it has the last word, except for REFUSED_KAFKA_PROPERTIES.
    extra: dict[str, str] = Field(default_factory=dict)
    orders_topic: str = "orders"
    dlq_topic: str = "orders.dlq"
    events_topic: str = "orders.events"
    group_id: str = "ordersctl"
    # Each consume worker joins with group.instance.id <host>-w<N>: a worker restarted within the session
    # timeout gets its partitions back without a rebalance. The host name must differ between consume processes.
    static_membership: bool = False

    @field_validator("extra", mode="before")
    @classmethod
    def _extra_as_text(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {str(k): _property_text(v) for k, v in value.items()}
        return value

    @field_validator("extra")
    @classmethod
    def _refuse_what_breaks_the_guarantee(cls, extra: dict[str, str]) -> dict[str, str]:
        for name in extra:
            why = REFUSED_KAFKA_PROPERTIES.get(name.strip().lower())
            if why is not None:
                raise ValueError(f"{name} is refused: {why}")
        if extra.get("group.protocol", "").strip().lower() == "consumer":
            for name in extra:
                if name.strip().lower() in BROKER_OWNED_WITH_CONSUMER_PROTOCOL:
                    raise ValueError(
                        f"{name} is refused with group.protocol=consumer (KIP-848): the broker owns it"
                        " (group.consumer.* broker settings), and librdkafka refuses it"
                    )
        return extra

    @property
    def consumer_group_protocol(self) -> bool:
        """The consumer group protocol of KIP-848 (``group.protocol=consumer``): the broker assigns partitions,
        and session timeout, heartbeat and assignor are the broker's."""
        return self.extra.get("group.protocol", "").strip().lower() == "consumer"

    @property
    def incremental_rebalance(self) -> bool:
        """Whether partitions come and go incrementally (cooperative-sticky, or the consumer group protocol):
        then a rebalance callback must call ``incremental_assign``/``incremental_unassign`` with the partitions
        it is given, never ``assign``/``unassign``."""
        strategies = [s.strip().lower() for s in self.extra.get("partition.assignment.strategy", "").split(",")]
        return self.consumer_group_protocol or "cooperative-sticky" in strategies

    def connection_config(self) -> dict[str, str]:
        """Address and security: the librdkafka properties of every client, before ``extra``."""
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
        return conf

    def client_config(self) -> dict[str, str]:
        """The librdkafka properties shared by every client: connection and security, then ``extra``."""
        return self.connection_config() | self.extra


def _ports_problem(hosts: str) -> str | None:
    """What is wrong with the ports of ``host[:port][,host[:port]...]``, or None."""
    for host in hosts.split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        _name, sep, number = port.rpartition(":") if ":" in port else ("", "", "")
        if sep and number and not (number.isdigit() and 0 < int(number) < 65536):
            return f"port {number!r} is not a port number"
    return None


def _url_hosts(url: str) -> str:
    """The ``host:port`` part of ``scheme://[userinfo@]hosts[/path][?query]``, found as masking finds it."""
    rest = url.split("://", 1)[1]
    rest = rest[rest.rfind("@") + 1 :] if "@" in rest else rest
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _dsn_problem(dsn: str) -> str | None:
    """Why libpq would refuse a DSN (URL or key=value), or None; never quotes its password."""
    if not dsn.strip():
        return "it is empty"
    if "://" in dsn:
        scheme = dsn.split("://", 1)[0].lower()
        if scheme not in ("postgresql", "postgres"):
            return f"the scheme {scheme}:// is not postgresql://"
        problem = _ports_problem(_url_hosts(dsn))
        if problem:
            return problem
    from psycopg import ProgrammingError, conninfo  # only when a DSN is checked: the import takes a while

    try:
        params = conninfo.conninfo_to_dict(dsn)
    except ProgrammingError as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else "it does not parse"
        for secret in masking.secrets_in_url(dsn):
            text = text.replace(secret, MASK)
        return text.removeprefix('missing "=" after ').strip() or "it does not parse"
    return _ports_problem(f"x:{params['port']}") if params.get("port") else None


def _quote_conninfo(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _with_password(url: str, password: str, *, conninfo: bool) -> str:
    """``url`` carrying ``password`` (instead of its own): in the userinfo of a URL, or as ``password=``."""
    if "://" not in url and conninfo:
        without = masking.KV_PASSWORD.sub("", url).strip()
        return f"{without} password={_quote_conninfo(password)}"
    # A password in the query would win over the userinfo's (libpq reads the query last): drop it.
    url = re.sub(r"[?&](?=#|$)", "", re.sub(r"([?&])password=[^&#]*&?", r"\1", url, flags=re.IGNORECASE))
    span = masking.userinfo_span(url)
    scheme_end = url.index("://") + 3
    user = url[scheme_end : span[1]].partition(":")[0] if span else ""
    after = url[span[1] + 1 :] if span else url[scheme_end:]
    return f"{url[:scheme_end]}{user}:{quote(password, safe='')}@{after}"


class PostgresSettings(BaseModel):
    """PostgreSQL connection. ``password``, when set, replaces the DSN's own password."""

    model_config = ConfigDict(extra="forbid")

    dsn: str = "postgresql://ordersctl:ordersctl@127.0.0.1:54329/orders"
    password: SecretStr | None = None
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

    @field_validator("dsn")
    @classmethod
    def _dsn_parses(cls, dsn: str) -> str:
        problem = _dsn_problem(dsn)
        if problem:
            raise ValueError(f"{problem}: {mask_url(dsn)}")
        return dsn

    @model_validator(mode="after")
    def _password_in_the_dsn(self) -> PostgresSettings:
        # Folded into the DSN, so that every connection (pooled, dedicated, in any module) carries it.
        if self.password is not None:
            self.dsn = _with_password(self.dsn, self.password.get_secret_value(), conninfo=True)
        return self


def _redis_url_problem(url: str) -> str | None:
    scheme, sep, _rest = url.partition("://")
    if not sep or scheme.lower() not in ("redis", "rediss", "unix"):
        return "not a redis://, rediss:// or unix:// URL (or empty, for no Redis)"
    if scheme.lower() == "unix":
        return None
    hosts = _url_hosts(url)
    if not hosts or "," in hosts:
        return "one host is needed"
    problem = _ports_problem(hosts)
    if problem:
        return problem
    path = re.split(r"[?#]", url.split("://", 1)[1], maxsplit=1)[0]
    database = path[len(path.split("/", 1)[0]) :].strip("/") if "/" in path else ""
    if database and not database.isdigit():
        return f"the database {database!r} is not a number"
    return None


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
        problem = _redis_url_problem(url) if url else None
        if problem:
            raise ValueError(f"{problem}: {mask_url(url)}")
        return url

    @model_validator(mode="after")
    def _password_in_the_url(self) -> RedisSettings:
        if self.password is not None and self.url:
            self.url = _with_password(self.url, self.password.get_secret_value(), conninfo=False)
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

    model_config = ConfigDict(extra="forbid")

    level: LogLevel = "INFO"
    format: LogFormat = "auto"


class Settings(BaseSettings):
    """Every setting of ordersctl, in sections. Built by ``load_settings``, which reads the sources itself
    (strictly, and noting where each value came from); constructed directly, only its arguments count."""

    model_config = SettingsConfigDict(extra="forbid")

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
        return (init_settings,)  # the environment and files are read by settings_sources, strictly


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


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret, every password in a URL and every secret-bearing property
    masked (by name: masking by value would also blank a setting that merely equals a password)."""
    data: dict[str, Any] = settings.model_dump(mode="json")
    for section, model in settings:
        for name, value in model:
            if isinstance(value, SecretStr):
                data[section][name] = MASK
            elif isinstance(value, str) and is_url_setting(name):
                data[section][name] = mask_url(value)
    data["kafka"]["extra"] = {k: (MASK if masking.is_secret_key(k) else v) for k, v in settings.kafka.extra.items()}
    return data
