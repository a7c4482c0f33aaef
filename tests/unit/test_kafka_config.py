"""What each Kafka client is configured with: ordersctl's defaults first, kafka.extra last (the user's word),
the guarantees kept, the consumer group protocol of KIP-848 accepted by librdkafka, and a name per worker."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException

from ordersctl.adapters import kafka as kafka_adapter
from ordersctl.adapters.kafka import Member, make_admin, make_consumer, make_producer
from ordersctl.config import KafkaSettings

DOWN = "127.0.0.1:3"  # nothing listens: building a client connects to nothing in these tests


class Captured:
    """Stands in for a librdkafka client class: keeps the configuration it was built with."""

    confs: list[dict[str, Any]]

    def __init__(self, conf: dict[str, Any]) -> None:
        type(self).confs.append(conf)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    Captured.confs = []
    for name in ("Producer", "Consumer", "AdminClient"):
        monkeypatch.setattr(kafka_adapter, name, Captured)
    return Captured.confs


def test_extra_has_the_last_word_over_our_tuning(built: list[dict[str, Any]]) -> None:
    tuning = {"linger.ms": "50", "compression.type": "zstd", "session.timeout.ms": "45000",
              "heartbeat.interval.ms": "3000", "queued.max.messages.kbytes": "65536", "client.id": "mine",
              "fetch.queue.backoff.ms": "1000"}  # fmt: skip
    k = KafkaSettings(bootstrap_servers=DOWN, extra=tuning)
    make_producer(k, None, **{"message.timeout.ms": 10_000})
    make_consumer(k)
    producer, consumer = built
    assert {key: producer[key] for key in ("linger.ms", "compression.type", "client.id")} == {
        "linger.ms": "50", "compression.type": "zstd", "client.id": "mine"}  # fmt: skip
    assert producer["message.timeout.ms"] == 10_000 and producer["enable.idempotence"] is True
    assert producer["acks"] == "all"
    for key in ("session.timeout.ms", "heartbeat.interval.ms", "queued.max.messages.kbytes", "fetch.queue.backoff.ms"):
        assert consumer[key] == tuning[key]
    assert consumer["enable.auto.commit"] is False and consumer["isolation.level"] == "read_committed"


def test_the_consumer_group_protocol_gets_no_classic_group_settings(built: list[dict[str, Any]]) -> None:
    make_consumer(KafkaSettings(bootstrap_servers=DOWN, extra={"group.protocol": "consumer"}))
    (conf,) = built
    assert conf["group.protocol"] == "consumer"
    assert not {"session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy"} & set(conf)


def test_librdkafka_accepts_our_consumer_under_the_consumer_group_protocol() -> None:
    # librdkafka refuses session.timeout.ms and heartbeat.interval.ms with group.protocol=consumer: this failed
    # when ordersctl set them whatever the protocol.
    for extra in ({"group.protocol": "consumer"}, {"partition.assignment.strategy": "cooperative-sticky"}):
        consumer = make_consumer(KafkaSettings(bootstrap_servers=DOWN, extra=extra))
        consumer.close()
    with pytest.raises(KafkaException):
        Consumer({"bootstrap.servers": DOWN, "group.id": "g", "group.protocol": "consumer",
                                "session.timeout.ms": 10_000})  # fmt: skip


def test_each_worker_has_its_own_client_id_and_static_membership_is_opt_in(built: list[dict[str, Any]]) -> None:
    worker = Member(worker=3, host="node7")
    make_consumer(KafkaSettings(bootstrap_servers=DOWN), None, worker)
    make_consumer(KafkaSettings(bootstrap_servers=DOWN, static_membership=True), None, worker)
    make_consumer(KafkaSettings(bootstrap_servers=DOWN, static_membership=True), "ordersctl.observe", worker)
    make_producer(KafkaSettings(bootstrap_servers=DOWN), worker)
    make_admin(KafkaSettings(bootstrap_servers=DOWN), Member(host="node7"))
    plain, static, other_group, producer, admin = built
    assert plain["client.id"] == static["client.id"] == producer["client.id"] == "ordersctl-node7-w3"
    assert admin["client.id"] == "ordersctl-node7"
    assert "group.instance.id" not in plain
    assert static["group.instance.id"] == "node7-w3"
    assert "group.instance.id" not in other_group  # only the orders group's consumer is a static member


def test_every_kafka_client_has_keepalive_and_ten_second_timeouts_unless_extra_says(
    built: list[dict[str, Any]],
) -> None:
    k = KafkaSettings(bootstrap_servers=DOWN)
    make_producer(k), make_consumer(k), make_admin(k)
    for conf in built:
        assert conf["socket.keepalive.enable"] is True
        assert conf["socket.timeout.ms"] == conf["socket.connection.setup.timeout.ms"] == 10_000
    make_consumer(KafkaSettings(bootstrap_servers=DOWN, extra={"socket.timeout.ms": "30000"}))
    assert built[-1]["socket.timeout.ms"] == "30000"


def test_the_readme_names_every_refused_key_where_users_connect_their_services() -> None:
    """#21: "Connecting to your services" states which keys ordersctl refuses, and the Configuration table why."""
    from ordersctl.settings_kafka import BROKER_OWNED_WITH_CONSUMER_PROTOCOL, REFUSED_KAFKA_PROPERTIES
    from tests.helpers import ROOT

    readme = (ROOT / "README.md").read_text()
    connecting = readme.split("## Connecting to your services", 1)[1].split("\n## ", 1)[0]
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for key in (*REFUSED_KAFKA_PROPERTIES, *BROKER_OWNED_WITH_CONSUMER_PROTOCOL):
        assert f"`{key}`" in connecting, key
    for key in REFUSED_KAFKA_PROPERTIES:
        assert f"`{key}`" in configuration.split("| refused in `kafka.extra` |", 1)[1], key
