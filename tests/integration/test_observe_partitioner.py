"""Our partition computation against the real broker: keyed messages from our own producer land where
``partition_for`` says, for librdkafka's default partitioner and for the key-hashing alternatives."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Message

from ordersctl.adapters.kafka import make_producer
from ordersctl.config import KafkaSettings, load_settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.observe.partitioner import DEFAULT_PARTITIONER, partition_for
from tests.conftest import KAFKA
from tests.helpers import create_topics

pytestmark = pytest.mark.integration

PARTITIONS = 7  # prime and not a power of two: a wrong hash rarely lands right by chance


@pytest.mark.parametrize("partitioner", [None, "consistent", "murmur2_random", "murmur2", "fnv1a_random"])
def test_keyed_messages_land_on_the_computed_partition(
    services: None, topic_prefix: str, partitioner: str | None
) -> None:
    topic = f"{topic_prefix}.orders"
    settings = load_settings(overrides={"kafka": {"bootstrap_servers": KAFKA, "orders_topic": topic}})
    create_topics(settings, partitions=PARTITIONS, dlq=False, events=False)
    overrides = {"partitioner": partitioner} if partitioner else {}
    producer = make_producer(KafkaSettings(bootstrap_servers=KAFKA), None, **overrides)
    gen = OrderGenerator(seed=31)
    keys = [gen.order()["order_uid"].encode() for _ in range(40)]  # order_uids as the generator makes them
    keys += [f"uid-{n}".encode() for n in range(0, 3000, 97)]  # lengths that leave a murmur2 tail of 1 to 3 bytes
    landed: dict[bytes, int] = {}

    def delivered(err: KafkaError | None, msg: Message) -> None:
        assert err is None, err
        landed[msg.key() or b""] = msg.partition() or 0

    for key in keys:
        producer.produce(topic, key=key, value=b"{}", on_delivery=delivered)
    assert producer.flush(30) == 0
    assert len(landed) == len(keys)
    assert len(set(landed.values())) == PARTITIONS, "the keys should spread over every partition"
    for key, partition in landed.items():
        assert partition == partition_for(key, PARTITIONS, partitioner or DEFAULT_PARTITIONER), key
