"""Kafka's settings: the connection, security passed through to librdkafka, topics and group, and the
librdkafka properties ``kafka.extra`` may not name (they would break a guarantee, or another setting owns them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from ordersctl.settings_sources import upper_choice

# Choices are case-insensitive: "sasl_ssl" is SASL_SSL.
SecurityProtocol = Annotated[Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(upper_choice)]
SaslMechanism = Annotated[
    Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"], BeforeValidator(upper_choice)
]


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


def _positive_integer(text: str) -> bool:
    return text.strip().isdigit() and int(text) > 0


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
        for name, value in extra.items():
            if name.strip().lower() == "statistics.interval.ms" and not _positive_integer(value):
                raise ValueError(
                    f"{name}={value} is refused: the worker's lag (progress, status, /livez, the lag metric) comes"
                    " from librdkafka's statistics; give a positive interval in milliseconds"
                )
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
