"""The real broker, Redis and the topic administration of ordersctl."""

from __future__ import annotations

import uuid

import pytest
import redis
from confluent_kafka import TopicPartition

from ordersctl.adapters.kafka_topics import TopicAdmin
from ordersctl.config import Settings
from ordersctl.errors import TopicError
from ordersctl.runtime import Runtime

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(runtime: Runtime, settings: Settings) -> TopicAdmin:
    return TopicAdmin(runtime.kafka_admin, settings.kafka)


def test_produce_and_consume_on_the_real_broker(runtime: Runtime, admin: TopicAdmin, settings: Settings) -> None:
    topic = settings.kafka.orders_topic
    assert admin.ensure(topic, 2, 1) == "created"
    payload = uuid.uuid4().hex.encode()
    producer = runtime.producer()
    producer.produce(topic, key=b"k1", value=payload, headers={"h": b"v"})
    assert producer.flush(15) == 0
    consumer = runtime.consumer(group_id=f"{topic}-rt")
    consumer.subscribe([topic])
    got = None
    for _ in range(60):
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got = msg
            break
    assert got is not None, "no message came back from the broker"
    assert got.value() == payload
    assert got.key() == b"k1"
    assert dict(got.headers() or []) == {"h": b"v"}
    consumer.commit(message=got, asynchronous=False)
    partition, offset = got.partition(), got.offset()
    assert partition is not None and offset is not None
    committed = consumer.committed([TopicPartition(topic, partition)], timeout=10)
    assert committed[0].offset == offset + 1


def test_topic_creation_is_idempotent_and_reports_fewer_partitions(admin: TopicAdmin, settings: Settings) -> None:
    name = settings.kafka.dlq_topic
    assert admin.ensure(name, 2, 1) == "created"
    assert admin.ensure(name, 2, 1) == "exists"
    assert admin.ensure(name, 1, 1) == "exists"
    with pytest.raises(TopicError, match="fewer than the 3"):
        admin.ensure(name, 3, 1)
    assert admin.partitions()[name] == 2


def test_redis_round_trip(runtime: Runtime) -> None:
    key = f"test:{uuid.uuid4().hex}"
    runtime.redis.set(key, b"\x00value\xff", ex=30)
    assert runtime.redis.get(key) == b"\x00value\xff"
    assert 0 < runtime.redis.ttl(key) <= 30
    runtime.redis.delete(key)


def test_redis_client_times_out_fast_when_down() -> None:
    client = redis.Redis(host="127.0.0.1", port=2, socket_connect_timeout=0.2)
    with pytest.raises(redis.ConnectionError):
        client.ping()
