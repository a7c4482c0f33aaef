"""``ordersctl topics create`` on the real single-node Kafka: one replica chosen, more refused (the 3-node
cluster's choice of three: tests/integration/test_cluster.py)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from ordersctl.config import Settings, load_settings
from tests.conftest import KAFKA
from tests.helpers import log_messages, ordersctl

pytestmark = pytest.mark.integration


@pytest.fixture
def kafka_only(services: None, topic_prefix: str) -> Settings:
    """This test's topics on the shared single node; no database is needed."""
    names = {"orders_topic": f"{topic_prefix}.orders", "events_topic": f"{topic_prefix}.orders.events",
             "dlq_topic": f"{topic_prefix}.orders.dlq"}  # fmt: skip
    return load_settings(overrides={"kafka": {"bootstrap_servers": KAFKA, **names}})


def _replicas(settings: Settings) -> dict[str, set[int]]:
    """Replica count of each partition, per topic of this test."""
    k = settings.kafka
    meta = AdminClient({"bootstrap.servers": KAFKA}).list_topics(timeout=10)
    return {
        name: {len(p.replicas) for p in meta.topics[name].partitions.values()}
        for name in (k.orders_topic, k.events_topic, k.dlq_topic)
        if name in meta.topics
    }


def test_create_chooses_one_replica_on_the_single_node(kafka_only: Settings) -> None:
    done = ordersctl(kafka_only, "topics", "create", "--dlq", "--partitions", "2", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "replication factor 1: min(3, brokers), and the cluster has 1" in done.stderr
    k = kafka_only.kafka
    assert _replicas(kafka_only) == {k.orders_topic: {1}, k.events_topic: {1}, k.dlq_topic: {1}}


def test_create_refuses_more_replicas_than_brokers_before_creating_anything(kafka_only: Settings) -> None:
    done = ordersctl(kafka_only, "topics", "create", "--replication-factor", "3", timeout=60)
    assert done.returncode == 1
    assert log_messages(done.stderr) == [
        f"ordersctl: error: replication factor 3 needs 3 brokers; the cluster at {KAFKA} has 1"
    ]
    assert _replicas(kafka_only) == {}
