"""Reading whole topics back, without a consumer group: what the checker compares against."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str
    headers: dict[str, str]


def read_all(bootstrap: str, topic: str, timeout: float = 60.0) -> Iterator[Record]:
    """Every record of ``topic`` up to its end offsets at the time of the call."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "chaos-checker", "enable.auto.commit": False,
                         "enable.partition.eof": False, "isolation.level": "read_committed"})  # fmt: skip
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return
        for partition in sorted(meta.partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
            position = low
            while position < high:
                msg = consumer.poll(timeout)
                if msg is None:
                    raise KafkaException(f"no data from {topic}[{partition}] at {position} within {timeout:.0f} s")
                if msg.error() is not None:
                    continue
                position = (msg.offset() or 0) + 1
                raw: Any = msg.headers() or []
                headers = {str(k): (v.decode() if isinstance(v, bytes) else str(v or "")) for k, v in raw}
                yield Record(partition, msg.offset() or 0, (msg.key() or b"").decode("utf-8", "replace"), headers)
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offsets, read without joining the group."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
    finally:
        consumer.close()
