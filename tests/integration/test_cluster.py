"""The 3-node KRaft cluster of scripts/stack (ORDERS_STACK_KAFKA_NODES=3, 127.0.0.1:29092/29094/29096).

Topics get three replicas and need two in sync; a killed partition leader's partitions move to another node
and acks=all writes go on; the node comes back with kafka-start and rejoins every ISR; a paused node resumes.
The cluster is left running afterwards: the chaos harness and the next tests use it."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

# Imported from where it is defined: confluent_kafka.admin does not re-export it for type checkers.
from confluent_kafka.admin._config import ConfigResource

from ordersctl.config import Settings, load_settings
from tests.helpers import ordersctl
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STACK = str(ROOT / "scripts" / "stack")
NODES = {1: 29092, 2: 29094, 3: 29096}
BOOTSTRAP = ",".join(f"127.0.0.1:{port}" for port in NODES.values())


def _stack_env() -> dict[str, str]:
    env = os.environ | {"ORDERS_STACK_KAFKA_NODES": "3"}
    # `up` restarts a PostgreSQL that runs with another profile than the one asked for; asking for the one it
    # runs with leaves the server the other tests share alone.
    running = subprocess.run([STACK, "pg-profile"], capture_output=True, text=True, timeout=30, check=False)
    if running.stdout.strip() in ("durable", "fast"):
        env["ORDERS_STACK_PG_PROFILE"] = running.stdout.strip()
    return env


def stack(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [STACK, *args], env=_stack_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"scripts/stack {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done


def _admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": BOOTSTRAP, "log_level": 0})


def _brokers() -> set[int]:
    return set(_admin().list_topics(timeout=10).brokers)


def _partitions(topic: str) -> dict[int, tuple[int, list[int], list[int]]]:
    """partition -> (leader, replicas, in-sync replicas)."""
    meta = _admin().list_topics(topic, timeout=10).topics[topic]
    return {p: (pm.leader, list(pm.replicas), list(pm.isrs)) for p, pm in meta.partitions.items()}


@pytest.fixture(scope="module")
def cluster() -> None:
    """The cluster up (started when it is not; `up` leaves running services alone)."""
    started = time.monotonic()
    done = subprocess.run([STACK, "up"], env=_stack_env(), capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        pytest.fail(f"ORDERS_STACK_KAFKA_NODES=3 scripts/stack up failed:\n{done.stderr}", pytrace=False)
    print(f"cluster up in {time.monotonic() - started:.1f}s: {done.stderr.strip().splitlines()[-2:]}")
    assert _brokers() == set(NODES), "the cluster's metadata does not list all three brokers"


@pytest.fixture
def topic(cluster: None) -> Iterator[Settings]:
    """Settings whose orders topic is this test's own, created by ``ordersctl topics create`` on node 1."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    names = {"orders_topic": f"{prefix}.orders", "events_topic": f"{prefix}.orders.events",
             "dlq_topic": f"{prefix}.orders.dlq"}  # fmt: skip
    settings = load_settings(overrides={"kafka": {"bootstrap_servers": "127.0.0.1:29092", **names}})
    done = ordersctl(settings, "topics", "create", "--partitions", "3", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "replication factor 3: min(3, brokers), and the cluster has 3" in done.stderr
    yield settings
    # Best effort: the cluster stays up for others, without every test's topics. The client is held until the
    # futures are done: a collected client fails them.
    admin = _admin()
    for future in admin.delete_topics([names["orders_topic"], names["events_topic"]], operation_timeout=30).values():
        future.exception(timeout=60)


def test_topics_get_three_replicas_and_need_two_in_sync(topic: Settings) -> None:
    name = topic.kafka.orders_topic
    assert [sorted(replicas) for _leader, replicas, _isr in _partitions(name).values()] == [[1, 2, 3]] * 3
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    admin = _admin()
    configs = admin.describe_configs([resource])[resource].result(timeout=30)
    assert configs["min.insync.replicas"].value == "2"
    assert configs["unclean.leader.election.enable"].value == "false"


def _send(topic: str, count: int) -> list[KafkaError | None]:
    """Send to partition 0 with acks=all; the delivery report of each message."""
    reports: list[KafkaError | None] = []

    def delivered(err: KafkaError | None, _msg: Message) -> None:
        reports.append(err)

    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 60_000, "log_level": 0})  # fmt: skip
    for i in range(count):
        producer.produce(topic, value=f"m{i}".encode(), partition=0, on_delivery=delivered)
    producer.flush(90)
    return reports


def test_a_killed_leader_hands_over_and_catches_up_after_kafka_start(topic: Settings) -> None:
    name = topic.kafka.orders_topic
    leader = _partitions(name)[0][0]
    assert leader in NODES
    stack("kafka-kill", str(leader))
    try:
        assert subprocess.run([STACK, "kafka-pid", str(leader)], capture_output=True, check=False).returncode == 1
        # The delivery waits while the controller fences the dead node and elects a new leader from the ISR.
        assert _send(name, 50) == [None] * 50, "acks=all writes failed with one node of three down"
        new_leader, _replicas, isr = _partitions(name)[0]
        assert new_leader in NODES and new_leader != leader
        assert leader not in isr and len(isr) == 2
    finally:
        stack("kafka-start", str(leader), timeout=240)  # whatever happened: the cluster stays whole
    assert _brokers() == set(NODES)
    wait_for(
        lambda: all(sorted(isr) == [1, 2, 3] for _l, _r, isr in _partitions(name).values()),
        90,
        f"node {leader} back in every ISR of {name}",
    )


def test_pause_and_resume_a_node(cluster: None) -> None:
    pid = stack("kafka-pid", "2").stdout.strip()
    stack("kafka-pause", "2")
    try:
        status = subprocess.run([STACK, "status"], env=_stack_env(), capture_output=True, text=True, check=False)
        assert f"kafka-2   paused   127.0.0.1:29094  pid {pid}" in status.stdout.splitlines()
        assert status.returncode == 1  # a paused node is not up
    finally:
        stack("kafka-resume", "2")
    status = stack("status")
    assert f"kafka-2   up       127.0.0.1:29094  pid {pid}" in status.stdout.splitlines()
    assert stack("kafka-pid", "2").stdout.strip() == pid  # the same JVM carried on
    wait_for(lambda: _brokers() == set(NODES), 60, "all three brokers after the resume")


def test_a_node_runs_in_a_session_of_its_own(cluster: None) -> None:
    """Found by the chaos harness: a node (re)started by `kafka-start` from a test run under `timeout` lived in
    that run's process group, and a signal to the group (the timeout, Ctrl-C) shut the broker down with it. A
    node in a session of its own is out of reach of its starter's group and terminal."""
    for node in NODES:
        pid = int(stack("kafka-pid", str(node)).stdout.strip())
        assert os.getsid(pid) == pid, f"node {node} (pid {pid}) shares its starter's session"
        assert os.getpgid(pid) != os.getpgid(0), f"node {node} is in the test run's process group"
