"""Kafka: client factories, topic administration, and Kafka errors mapped to our error classes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from ordersctl.config import KafkaSettings
from ordersctl.errors import ServiceUnavailable, TopicError

SERVICE = "Kafka"
_rdkafka_log = logging.getLogger("ordersctl.librdkafka")


def _base(settings: KafkaSettings) -> dict[str, Any]:
    conf: dict[str, Any] = dict(settings.client_config())
    conf["logger"] = _rdkafka_log
    return conf


def is_fatal(err: KafkaError) -> bool:
    """An error after which the client is unusable: librdkafka raises it once (``fatal()``), then fails every
    later or queued message with ``_FATAL``."""
    return bool(err.fatal()) or err.code() == KafkaError._FATAL


def make_producer(settings: KafkaSettings, **overrides: Any) -> Producer:
    """An idempotent producer: retries never duplicate or reorder a message within a partition."""
    conf = _base(settings)
    conf.update({"enable.idempotence": True, "acks": "all", "linger.ms": 5, "compression.type": "lz4"})
    conf.update(overrides)
    return Producer(conf)


def make_consumer(settings: KafkaSettings, group_id: str | None = None, **overrides: Any) -> Consumer:
    """A consumer that never commits on its own: offsets are committed by the pipeline after success."""
    conf = _base(settings)
    conf.update(
        {
            "group.id": group_id or settings.group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
            # A worker killed with -9 gives its partitions back after 10 s rather than the default 45 s.
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
        }
    )
    conf.update(overrides)
    return Consumer(conf)


def make_admin(settings: KafkaSettings) -> AdminClient:
    return AdminClient(_base(settings))


def unavailable(settings: KafkaSettings, reason: str) -> ServiceUnavailable:
    return ServiceUnavailable(SERVICE, settings.bootstrap_servers, reason)


@dataclass(frozen=True)
class TopicInfo:
    """A topic and its partitions' end offsets."""

    name: str
    partitions: int
    end_offsets: dict[int, int]

    @property
    def messages(self) -> int:
        """Upper bound of messages held (end offsets; equals the count while nothing was deleted)."""
        return sum(self.end_offsets.values())


class TopicAdmin:
    """Idempotent topic creation and listing."""

    def __init__(self, admin: AdminClient, settings: KafkaSettings, timeout: float = 10.0) -> None:
        self._admin = admin
        self._settings = settings
        self._timeout = timeout

    def partitions(self) -> dict[str, int]:
        """Partition count of every topic; raises ServiceUnavailable when no broker answers."""
        try:
            meta = self._admin.list_topics(timeout=self._timeout)
        except KafkaException as exc:
            raise unavailable(self._settings, str(exc.args[0].str() if exc.args else exc)) from None
        return {name: len(t.partitions) for name, t in meta.topics.items() if not name.startswith("__")}

    def ensure(self, name: str, partitions: int, replication_factor: int) -> str:
        """Create a topic; returns "created", "exists", or raises TopicError for a mismatch."""
        existing = self.partitions()
        if name in existing:
            if existing[name] < partitions:
                raise TopicError(
                    f"topic {name} exists with {existing[name]} partitions, fewer than the {partitions} asked;"
                    f" add partitions deliberately (it changes key -> partition mapping)"
                )
            return "exists"
        futures = self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)],
            operation_timeout=self._timeout,
            request_timeout=self._timeout,
        )
        try:
            futures[name].result(timeout=self._timeout)
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return "exists"
            raise TopicError(f"cannot create topic {name}: {error.str()}") from None
        return "created"

    def describe(self, consumer: Consumer) -> list[TopicInfo]:
        """Every non-internal topic with its end offsets."""
        result = []
        for name, count in sorted(self.partitions().items()):
            ends = {}
            for p in range(count):
                try:
                    _low, high = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=self._timeout)
                except KafkaException as exc:
                    raise unavailable(self._settings, str(exc)) from None
                ends[p] = high
            result.append(TopicInfo(name, count, ends))
        return result
