"""Kafka: client factories, sending with confirmation, and Kafka errors mapped to our error classes (topic
administration: kafka_topics)."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol, TypeVar, cast

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from ordersctl.adapters.kafka_errors import fatal_error, raised_once, refused_settings, stop_on_fatal
from ordersctl.config import KafkaSettings
from ordersctl.errors import AccessDenied, ServiceUnavailable

SERVICE = "Kafka"
_rdkafka_log = logging.getLogger("ordersctl.librdkafka")


@dataclass(frozen=True)
class Member:
    """Which process a client belongs to: its ``client.id`` names the host and the consume worker's number, and
    with ``kafka.static_membership`` the worker's consumer joins as ``group.instance.id`` ``<host>-w<N>``."""

    worker: int | None = None  # the consume worker's number; None for any other command
    host: str = field(default_factory=socket.gethostname)

    def client_id(self) -> str:
        return f"ordersctl-{self.host}" + ("" if self.worker is None else f"-w{self.worker}")

    def instance_id(self) -> str | None:
        return None if self.worker is None else f"{self.host}-w{self.worker}"


def _config(
    settings: KafkaSettings, defaults: dict[str, Any], overrides: dict[str, Any], member: Member | None
) -> dict[str, Any]:
    """ordersctl's defaults, then the connection settings, the caller's properties and the member's name, and
    ``kafka.extra`` last: the user's word is the last one (what would break the guarantee is refused when the
    settings are loaded)."""
    conf: dict[str, Any] = {**LIVENESS_DEFAULTS, **defaults, **settings.connection_config(), **overrides}
    conf["client.id"] = (member or Member()).client_id()
    conf.update(settings.extra)
    conf["logger"] = _rdkafka_log
    # What cannot heal is raised from the poll that serves it (kafka_errors); an admin client's only when polled.
    conf["error_cb"] = stop_on_fatal(settings.bootstrap_servers)
    return conf


def is_fatal(err: KafkaError) -> bool:
    """An error after which the client is unusable: librdkafka raises it once (``fatal()``), then fails every
    later or queued message with ``_FATAL``."""
    return bool(err.fatal()) or err.code() == KafkaError._FATAL


# What makes ordersctl's guarantees (never overridden: kafka.extra may not name these keys) ...
PRODUCER_GUARANTEES: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}
CONSUMER_GUARANTEES: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "isolation.level": "read_committed",
    "enable.partition.eof": False,
}
# ... and its tuning, which kafka.extra may change.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "linger.ms": 5,
    "compression.type": "lz4",
    # The broker sets the largest record per topic; the client is never the tighter bound (librdkafka's default
    # is 1,000,000 bytes, under Kafka's 1,048,588): a dead letter is its original plus headers, and a DLQ whose
    # producer refused it would stall that partition for ever.
    "message.max.bytes": 64 * 1024 * 1024,
}
CONSUMER_DEFAULTS: dict[str, Any] = {
    # Prefetch at most 12 MiB (default 64 MiB): about a second of orders at full speed, and a worker's memory
    # stays flat however large the backlog is; less costs orders/s, since a pause() discards the prefetch
    # (docs/performance.md has the figures).
    "queued.max.messages.kbytes": 12_288,
    # Once that queue is full librdkafka stops fetching and by default fetches again 1 s later, while a worker
    # drains it in about half of that: catching up, a worker then waited 0.4-0.5 s at each refill (the figures
    # in docs/performance.md). The backoff only applies while the queue is full: an idle consumer never waits it.
    "fetch.queue.backoff.ms": 10,
}
# Every client's liveness (kafka.extra may change them): a broker that vanishes without a word (a host lost, a
# firewall dropping packets) is noticed within 10 s, as PostgreSQL's connections are (adapters/postgres.py), not
# after TCP's retransmission limit or librdkafka's 60 s request timeout. A request unanswered for 10 s ends its
# connection and is retried on a new one (produce is idempotent, so a retried send never duplicates).
LIVENESS_DEFAULTS: dict[str, Any] = {
    "socket.keepalive.enable": True,
    "socket.timeout.ms": 10_000,
    "socket.connection.setup.timeout.ms": 10_000,
}
# The classic group protocol only: under group.protocol=consumer (KIP-848) the broker owns them, and librdkafka
# refuses a consumer that sets them.
CLASSIC_GROUP_DEFAULTS: dict[str, Any] = {
    # A worker killed with -9 gives its partitions back after 10 s rather than the default 45 s.
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 2_000,
}


def make_producer(settings: KafkaSettings, member: Member | None = None, **overrides: Any) -> Producer:
    """An idempotent producer: retries never duplicate or reorder a message within a partition."""
    return _built(Producer, _config(settings, {**PRODUCER_DEFAULTS, **PRODUCER_GUARANTEES}, overrides, member))


def make_consumer(
    settings: KafkaSettings, group_id: str | None = None, member: Member | None = None, **overrides: Any
) -> Consumer:
    """A consumer that never commits on its own: offsets are committed by the pipeline after success. A consume
    worker's consumer of the orders group joins as a static member when ``kafka.static_membership`` is on."""
    defaults = {**CONSUMER_DEFAULTS, **CONSUMER_GUARANTEES, "group.id": group_id or settings.group_id}
    if not settings.consumer_group_protocol:
        defaults.update(CLASSIC_GROUP_DEFAULTS)
    instance = member.instance_id() if member is not None else None
    if settings.static_membership and instance is not None and defaults["group.id"] == settings.group_id:
        defaults["group.instance.id"] = instance
    return _built(Consumer, _config(settings, defaults, overrides, member))


def make_admin(settings: KafkaSettings, member: Member | None = None) -> AdminClient:
    return _built(AdminClient, _config(settings, {}, {}, member))


Client = TypeVar("Client", Producer, Consumer, AdminClient)


def _built(kind: Callable[[dict[str, Any]], Client], conf: dict[str, Any]) -> Client:
    """``kind(conf)``; settings librdkafka refuses (a wrong ssl.key.password, an unreadable certificate, an
    unknown property) are one line and exit 2, not a traceback from its constructor."""
    try:
        return kind(conf)
    except KafkaException as exc:
        raise refused_settings(exc.args[0]) from None


def unavailable(settings: KafkaSettings, reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(SERVICE, settings.bootstrap_servers, reason)


# ---------------------------------------------------------------- sending with confirmation

Headers = Sequence[tuple[str, str | bytes | None]]
POLL_EVERY = 64  # messages between two polls of the producer while sending
DeliveryReport = Callable[[KafkaError | None, Any], None]


class SendingProducer(Protocol):
    """The part of confluent_kafka.Producer that sending with confirmation uses."""

    def produce(
        self,
        topic: str,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        on_delivery: DeliveryReport | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None: ...
    def poll(self, timeout: float = -1) -> int: ...
    def flush(self, timeout: float = -1) -> int: ...


class Outgoing(NamedTuple):
    """One message to send; ``tag`` is the caller's name for it in the report (a row id, a DLQ offset). A tuple:
    one is made per event on the ingest path, and a frozen dataclass costs several times as much to build."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None
    partition: int = -1  # -1: the producer's partitioner
    tag: Any = None


@dataclass
class SendReport:
    """What became of the messages sent since the last confirmation."""

    confirmed: int = 0  # the tags of confirmed messages go to ``on_delivered``
    failed: list[tuple[Any, str]] = field(default_factory=list)  # (tag, reason): refused or not delivered
    unconfirmed: list[Any] = field(default_factory=list)  # still without a delivery report at the deadline
    fatal: KafkaError | None = None  # the producer is unusable: a new one must take over

    @property
    def complete(self) -> bool:
        return not self.failed and not self.unconfirmed and self.fatal is None


class ConfirmedSender:
    """Sends messages and waits until the broker confirmed each one: the one way ordersctl produces.

    A full local queue waits for room (deliveries drain it); a message the producer refuses is a failure of
    that message; a fatal client error stops the sending, since every later message would fail too.
    ``rate`` paces sending to that many messages a second; ``on_delivered`` is told of every confirmation."""

    def __init__(
        self,
        producer: SendingProducer,
        *,
        timeout: float = 15.0,
        rate: float | None = None,
        on_delivered: Callable[[Any], None] | None = None,
    ) -> None:
        self._producer = producer
        self._timeout = timeout
        self._rate = rate
        self._on_delivered = on_delivered
        self._report = SendReport()
        self._outstanding: dict[int, Any] = {}
        self._denied: AccessDenied | None = None  # a delivery refused for our access (a missing ACL): raised
        self._sent = 0
        self._started = time.monotonic()

    def send_all(self, messages: Iterable[Outgoing]) -> SendReport:
        for msg in messages:
            if not self.send(msg):
                break
        return self.confirm()

    def send(self, msg: Outgoing) -> bool:
        """Hand one message to the producer; False once the producer is unusable (nothing more is sent)."""
        if self._report.fatal is not None:
            return False
        if self._rate:
            self._pace()
        serial = self._sent
        self._sent += 1
        # Sequence -> list for the producer's signature; a cast, not a copy (it only reads the headers).
        headers = cast("list[tuple[str, str | bytes | None]] | None", msg.headers)
        report = partial(self._delivered, serial)
        deadline: float | None = None
        while True:
            try:
                self._producer.produce(msg.topic, key=msg.key, value=msg.value, headers=headers,
                                       partition=msg.partition, on_delivery=report)  # fmt: skip
                break
            except BufferError:
                deadline = deadline or time.monotonic() + self._timeout
                if time.monotonic() > deadline:
                    self._report.failed.append((msg.tag, "local queue full"))
                    return True
                self._producer.poll(0.1)  # the local queue is full: let deliveries drain it
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if is_fatal(error):
                    self._report.fatal = error
                    return False
                self._report.failed.append((msg.tag, error.str()))
                return True
        self._outstanding[serial] = msg.tag
        if not serial % POLL_EVERY:
            self._producer.poll(0)  # serve delivery reports now and then; confirm() waits for the rest
        return True

    def confirm(self) -> SendReport:
        """Wait (at most the timeout) for every delivery report; returns the report and starts a new one. A message
        refused for our access (say a topic authorization failure) raises AccessDenied: retrying cannot heal it."""
        deadline = time.monotonic() + self._timeout
        while self._outstanding and self._report.fatal is None and self._denied is None and time.monotonic() < deadline:
            self._producer.flush(min(0.5, max(0.0, deadline - time.monotonic())))
        if self._denied is not None:
            raise self._denied
        report, self._report = self._report, SendReport()
        report.unconfirmed = list(self._outstanding.values())
        self._outstanding = {}
        return report

    def _delivered(self, serial: int, err: KafkaError | None, _msg: Any) -> None:
        if serial not in self._outstanding:
            return  # given up on at an earlier deadline
        tag = self._outstanding.pop(serial)
        if err is None:
            self._report.confirmed += 1
            if self._on_delivered is not None:
                self._on_delivered(tag)
            return
        self._report.failed.append((tag, err.str()))
        denied = fatal_error(err)
        if isinstance(denied, AccessDenied) and self._denied is None:
            self._denied = raised_once(denied)
        if is_fatal(err) and self._report.fatal is None:
            self._report.fatal = err

    def _pace(self) -> None:
        if self._rate:  # for the type checker; send() calls this only with a rate
            ahead = self._started + self._sent / self._rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
