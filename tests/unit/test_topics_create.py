"""``ordersctl topics create`` fits the replication factor to the cluster: min(3, brokers) unless asked, and
never more than the brokers. The cluster is a typed fake of the admin client, so no broker is needed."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

# Imported from where they are defined: confluent_kafka.admin does not re-export them for type checkers.
from confluent_kafka.admin._config import ConfigEntry, ConfigResource
from confluent_kafka.admin._metadata import BrokerMetadata, ClusterMetadata, PartitionMetadata, TopicMetadata
from confluent_kafka.cimpl import NewTopic

from ordersctl.adapters.kafka_topics import DLQ_HEADROOM_BYTES, TopicAdmin, TopicAdminClient
from ordersctl.cli.main import main
from ordersctl.config import load_settings
from ordersctl.errors import TopicError
from ordersctl.runtime import Runtime
from tests.helpers import log_messages


class FakeCluster:
    """A cluster of ``brokers`` brokers that creates every topic asked for; answers with real metadata objects."""

    def __init__(self, brokers: int) -> None:
        self.brokers = brokers
        self.created: dict[str, NewTopic] = {}
        self.max_message_bytes = 1_048_588  # the broker's default

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> ClusterMetadata:
        meta = ClusterMetadata()
        for broker_id in range(1, self.brokers + 1):
            broker = BrokerMetadata()
            broker.id = broker_id
            meta.brokers[broker_id] = broker
        for name, new in self.created.items():
            described = TopicMetadata()
            described.topic = name
            described.partitions = {p: PartitionMetadata() for p in range(new.num_partitions)}
            meta.topics[name] = described
        return meta

    def describe_configs(self, resources: list[ConfigResource], **kwargs: Any) -> dict[Any, Future[Any]]:
        futures: dict[Any, Future[Any]] = {}
        for resource in resources:
            config = self.created[resource.name].config or {}
            size = config.get("max.message.bytes", str(self.max_message_bytes))
            futures[resource] = Future()
            futures[resource].set_result({"max.message.bytes": ConfigEntry("max.message.bytes", size)})
        return futures

    def create_topics(self, new_topics: list[NewTopic], **kwargs: Any) -> dict[str, Future[Any]]:
        futures: dict[str, Future[Any]] = {}
        for new in new_topics:
            self.created[new.topic] = new
            futures[new.topic] = Future()
            futures[new.topic].set_result(None)
        return futures


def _admin(brokers: int) -> TopicAdmin:
    cluster: TopicAdminClient = FakeCluster(brokers)  # the fake has the admin client's shape
    return TopicAdmin(cluster, load_settings().kafka)


@pytest.mark.parametrize(("brokers", "chosen"), [(1, 1), (2, 2), (3, 3), (5, 3)])
def test_without_a_factor_it_is_min_3_and_the_brokers(brokers: int, chosen: int) -> None:
    assert _admin(brokers).replication_factor() == chosen


def test_an_asked_factor_up_to_the_brokers_is_kept() -> None:
    assert _admin(3).replication_factor(2) == 2
    assert _admin(5).replication_factor(5) == 5


def test_more_than_the_brokers_is_refused() -> None:
    with pytest.raises(TopicError, match=r"replication factor 3 needs 3 brokers; the cluster at .* has 1"):
        _admin(1).replication_factor(3)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    """The fake in place of the admin client of every Runtime, for the command run in this process (default
    settings: none from the environment)."""
    fake = FakeCluster(brokers=1)
    monkeypatch.setattr(Runtime, "kafka_admin", property(lambda _self: fake))
    for var in [name for name in os.environ if name.startswith("ORDERS_")]:
        monkeypatch.delenv(var)
    # The command sets up the root logger for its process; the tests after this one keep theirs.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield fake
    root.handlers[:] = handlers
    root.setLevel(level)


def test_create_picks_the_factor_from_the_cluster_and_says_so(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.brokers = 5
    assert main(["topics", "create", "--dlq", "--partitions", "2"]) == 0
    assert {name: new.replication_factor for name, new in cluster.created.items()} == dict.fromkeys(
        ("orders", "orders.events", "orders.dlq"), 3
    )
    assert "replication factor 3: min(3, brokers), and the cluster has 5" in capsys.readouterr().err


def test_create_on_a_single_broker_uses_one_replica(cluster: FakeCluster) -> None:
    assert main(["topics", "create", "--partitions", "2"]) == 0
    assert [new.replication_factor for new in cluster.created.values()] == [1, 1]


def test_create_with_an_explicit_factor_uses_it_without_a_note(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.brokers = 3
    assert main(["topics", "create", "--replication-factor", "2"]) == 0
    assert [new.replication_factor for new in cluster.created.values()] == [2, 2]
    assert "min(3, brokers)" not in capsys.readouterr().err


def test_create_asking_more_than_the_brokers_is_one_line_and_creates_nothing(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["topics", "create", "--replication-factor", "2"]) == 1
    err = log_messages(capsys.readouterr().err)  # off a terminal: JSON records
    assert err == ["ordersctl: error: replication factor 2 needs 2 brokers; the cluster at 127.0.0.1:19092 has 1"]
    assert cluster.created == {}


def test_the_dlq_takes_any_record_the_orders_topic_takes_plus_the_dead_letter_headers() -> None:
    cluster = FakeCluster(1)
    admin = TopicAdmin(cluster, load_settings().kafka)
    admin.ensure("orders", 4, 1)
    assert admin.ensure("orders.dlq", 4, 1, admin.dlq_config("orders")) == "created"
    assert cluster.created["orders.dlq"].config == {"max.message.bytes": str(1_048_588 + DLQ_HEADROOM_BYTES)}


def test_an_existing_dlq_that_would_refuse_big_dead_letters_is_a_mismatch() -> None:
    cluster = FakeCluster(1)
    admin = TopicAdmin(cluster, load_settings().kafka)
    admin.ensure("orders", 4, 1)
    admin.ensure("orders.dlq", 4, 1)  # made by hand, with the broker's default limit
    with pytest.raises(TopicError, match=r"orders.dlq takes records of at most 1048588 bytes.*max.message.bytes="):
        admin.ensure("orders.dlq", 4, 1, admin.dlq_config("orders"))


class LaggingCluster(FakeCluster):
    """A KRaft cluster whose broker answering DescribeConfigs learns of a new topic after the controller said
    it was created: the first ``unknown_answers`` descriptions of it answer UNKNOWN_TOPIC_OR_PART."""

    def __init__(self, brokers: int, unknown_answers: int) -> None:
        super().__init__(brokers)
        self.unknown_answers = unknown_answers

    def describe_configs(self, resources: list[ConfigResource], **kwargs: Any) -> dict[Any, Future[Any]]:
        if self.unknown_answers > 0:
            self.unknown_answers -= 1
            future: Future[Any] = Future()
            future.set_exception(KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)))
            return {resources[0]: future}
        return super().describe_configs(resources, **kwargs)


def test_a_topic_just_created_is_waited_for_until_every_broker_knows_it() -> None:
    """CI's chaos run (3 brokers) failed `topics create --dlq`: reading the orders topic's limit right after
    creating it met a broker that did not know it yet."""
    cluster = LaggingCluster(3, unknown_answers=3)
    admin = TopicAdmin(cluster, load_settings().kafka)
    admin.ensure("orders", 4, 3)
    assert admin.ensure("orders.dlq", 4, 3, admin.dlq_config("orders")) == "created"


def test_a_topic_that_stays_unknown_is_an_error_within_the_timeout() -> None:
    cluster = LaggingCluster(1, unknown_answers=10**9)
    admin = TopicAdmin(cluster, load_settings().kafka, timeout=0.5)
    with pytest.raises(TopicError, match=r"cannot read the configuration of topic nowhere: .*nknown"):
        admin.max_message_bytes("nowhere")
