"""Kafka topic administration: idempotent creation with a replication factor fitted to the cluster, listing."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

# Imported from where they are defined: confluent_kafka.admin does not re-export them for type checkers.
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._metadata import ClusterMetadata
from confluent_kafka.cimpl import NewTopic

from ordersctl.adapters.kafka import unavailable
from ordersctl.config import KafkaSettings
from ordersctl.errors import TopicError

ATTEMPT_SECONDS = 1.0  # one metadata request's wait, before the error callback is looked at
UNKNOWN_TOPIC_RETRY_SECONDS = 0.1


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


# New topics get this many replicas when the cluster has enough brokers: with min.insync.replicas=2, one broker
# can be down and every acks=all write still succeeds.
DEFAULT_REPLICAS = 3
# What a dead letter adds to its original: ordersctl's headers (error texts cut at 1,000 characters, at most 50
# field errors) stay well under this.
DLQ_HEADROOM_BYTES = 64 * 1024


class TopicAdminClient(Protocol):
    """The part of confluent_kafka's AdminClient that topic administration uses."""

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata: ...
    def create_topics(self, new_topics: list[NewTopic], **kwargs: Any) -> dict[str, Future[Any]]: ...
    def describe_configs(self, resources: list[ConfigResource], **kwargs: Any) -> dict[Any, Future[Any]]: ...


class TopicAdmin:
    """Idempotent topic creation and listing."""

    def __init__(self, admin: TopicAdminClient, settings: KafkaSettings, timeout: float = 10.0) -> None:
        self._admin = admin
        self._settings = settings
        self._timeout = timeout

    def _metadata(self) -> ClusterMetadata:
        """The cluster's metadata, asked for ``ATTEMPT_SECONDS`` at a time until ``timeout``. An admin client hears
        of refused credentials only through its error callback, served by poll: between two attempts it raises
        them (AccessDenied, kafka_errors) at once, rather than this vaguer "unreachable" after the whole timeout
        and hundreds of librdkafka's lines."""
        deadline = time.monotonic() + self._timeout
        poll = getattr(self._admin, "poll", None)
        while True:
            left = deadline - time.monotonic()
            try:
                return self._admin.list_topics(timeout=max(0.1, min(ATTEMPT_SECONDS, left)))
            except KafkaException as exc:
                if poll is not None:
                    poll(0)
                if left <= ATTEMPT_SECONDS:
                    raise unavailable(self._settings, str(exc.args[0].str() if exc.args else exc)) from None

    def partitions(self) -> dict[str, int]:
        """Partition count of every topic; raises ServiceUnavailable when no broker answers."""
        return {name: len(t.partitions) for name, t in self._metadata().topics.items() if not name.startswith("__")}

    def brokers(self) -> int:
        """The brokers the cluster's metadata lists (registered and not fenced)."""
        return len(self._metadata().brokers)

    def replication_factor(self, asked: int | None = None) -> int:
        """``asked``, or min(DEFAULT_REPLICAS, brokers) when None; TopicError when it exceeds the brokers."""
        brokers = self.brokers()
        if asked is None:
            return max(1, min(DEFAULT_REPLICAS, brokers))
        if asked > brokers:
            raise TopicError(
                f"replication factor {asked} needs {asked} brokers; the cluster at"
                f" {self._settings.bootstrap_servers} has {brokers}"
            )
        return asked

    def max_message_bytes(self, name: str) -> int:
        """The largest record the topic accepts (its ``max.message.bytes``, the broker's default when unset)."""
        resource = ConfigResource(ConfigResource.Type.TOPIC, name)
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                found = self._admin.describe_configs([resource], request_timeout=self._timeout)
                configs = next(iter(found.values())).result(timeout=self._timeout)
                return int(configs["max.message.bytes"].value)
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                # The controller says "created" before every broker has the topic in its metadata: the broker
                # that answers may not know it for a moment (a fresh 3-broker cluster, CI's chaos run).
                if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART or time.monotonic() >= deadline:
                    raise TopicError(f"cannot read the configuration of topic {name}: {error.str()}") from None
            time.sleep(UNKNOWN_TOPIC_RETRY_SECONDS)

    def dlq_config(self, orders_topic: str) -> dict[str, str]:
        """The DLQ's settings: it must take any record the orders topic takes, with the dead-letter headers on
        top, or one big poison message stalls its partition (the DLQ refuses it for ever)."""
        return {"max.message.bytes": str(self.max_message_bytes(orders_topic) + DLQ_HEADROOM_BYTES)}

    def ensure(self, name: str, partitions: int, replication_factor: int, config: dict[str, str] | None = None) -> str:
        """Create a topic; returns "created", "exists", or raises TopicError for a mismatch."""
        existing = self.partitions()
        if name in existing:
            if existing[name] < partitions:
                raise TopicError(
                    f"topic {name} exists with {existing[name]} partitions, fewer than the {partitions} asked;"
                    f" add partitions deliberately (it changes key -> partition mapping)"
                )
            self._check_record_size(name, config)
            return "exists"
        futures = self._admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config or {})],
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

    def _check_record_size(self, name: str, config: dict[str, str] | None) -> None:
        wanted = int((config or {}).get("max.message.bytes", 0))
        if wanted and (has := self.max_message_bytes(name)) < wanted:
            raise TopicError(
                f"topic {name} takes records of at most {has} bytes, fewer than the {wanted} it needs; raise it:"
                f" kafka-configs --alter --entity-type topics --entity-name {name}"
                f" --add-config max.message.bytes={wanted}"
            )

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
