"""Kafka as an observer sees it: partitions, end offsets, a group's committed offsets, state and members.

Nothing here joins a group or commits: offsets come from the admin API (OffsetFetch, DescribeGroups) and
records are read with assign, so looking never triggers a rebalance of the workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from ordersctl.adapters.kafka_scan import scan_partition
from ordersctl.errors import OrdersError


class TopicMissing(OrdersError):
    """A topic the observer reads does not exist."""


@dataclass(frozen=True)
class GroupMember:
    """One consumer of the group, as the broker describes it."""

    client_id: str
    host: str
    partitions: tuple[int, ...]  # of the topic asked about

    def as_json(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "host": self.host, "partitions": list(self.partitions)}


@dataclass(frozen=True)
class GroupInfo:
    """A consumer group's state (stable, empty, preparing_rebalance, dead, ...) and its members."""

    group_id: str
    state: str
    members: tuple[GroupMember, ...]

    def as_json(self) -> dict[str, Any]:
        return {"group_id": self.group_id, "state": self.state, "members": [m.as_json() for m in self.members]}


class KafkaView:
    """Reads topics and a consumer group's progress without joining the group.

    One caller at a time: the consumer behind it is not meant for concurrent use. A broker that does not
    answer raises KafkaException (metadata, offsets) or TransientError (a scan that stalls)."""

    def __init__(self, admin: AdminClient, consumer: Consumer, timeout: float = 5.0) -> None:
        self._admin = admin
        self._consumer = consumer
        self.timeout = timeout

    def ping(self, topic: str) -> None:
        """One metadata request for ``topic`` only (as fast on a broker with many topics). Asked through the
        consumer: a consumer never makes the broker auto-create the topic it names, an admin client may."""
        self._consumer.list_topics(topic, timeout=self.timeout)

    def partitions(self, topic: str) -> list[int]:
        """The topic's partitions; raises TopicMissing when it does not exist."""
        meta = self._consumer.list_topics(topic, timeout=self.timeout)
        found = meta.topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise TopicMissing(f"topic {topic} does not exist")
        return sorted(found.partitions)

    def watermarks(self, topic: str, partitions: list[int]) -> dict[int, tuple[int, int]]:
        """partition -> (low, high): the first offset still held and the offset the next record gets."""
        out = {}
        for p in partitions:
            low, high = self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout)
            out[p] = (low, high)
        return out

    def committed(self, group_id: str, topic: str, partitions: list[int]) -> dict[int, int]:
        """partition -> the group's committed offset; partitions the group never committed are left out."""
        request = ConsumerGroupTopicPartitions(group_id, [TopicPartition(topic, p) for p in partitions])
        futures = self._admin.list_consumer_group_offsets([request], request_timeout=self.timeout)
        result = futures[group_id].result(timeout=self.timeout * 2)
        return {tp.partition: tp.offset for tp in result.topic_partitions or [] if tp.offset >= 0}

    def group(self, group_id: str, topic: str) -> GroupInfo:
        """State and members of a group; a group the broker does not know is "dead" with no members."""
        futures = self._admin.describe_consumer_groups([group_id], request_timeout=self.timeout)
        try:
            desc = futures[group_id].result(timeout=self.timeout * 2)
        except KafkaException as exc:
            if exc.args and isinstance(exc.args[0], KafkaError) and exc.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return GroupInfo(group_id, "dead", ())
            raise
        members = tuple(
            GroupMember(
                m.client_id,
                m.host,
                tuple(sorted(tp.partition for tp in m.assignment.topic_partitions if tp.topic == topic)),
            )
            for m in desc.members
        )
        return GroupInfo(group_id, desc.state.name.lower(), members)

    def offsets_at(self, topic: str, partitions: list[int], since: datetime) -> dict[int, int]:
        """partition -> offset of the first record written at or after ``since`` (the end when there is none)."""
        stamp = int(since.timestamp() * 1000)
        found = self._consumer.offsets_for_times([TopicPartition(topic, p, stamp) for p in partitions],
                                                 timeout=self.timeout)  # fmt: skip
        ends = self.watermarks(topic, [tp.partition for tp in found if tp.offset < 0])
        return {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition][1] for tp in found}

    def scan(self, topic: str, partition: int, start: int, end: int) -> Iterator[Message]:
        """Records ``start <= offset < end`` of one partition."""
        return scan_partition(self._consumer, topic, partition, start, end, self.timeout * 2)

    @property
    def consumer(self) -> Consumer:
        """The consumer it reads with (assign only): the DLQ is read through it too."""
        return self._consumer
