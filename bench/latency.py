"""Latency mode of bench/ingest.py: orders produced at a steady rate while ``ordersctl consume`` runs, and for
each of them the time from its record in the orders topic to its "order saved" event: the event's Kafka
timestamp minus the order record's (both CreateTime, set by their producers on this machine).

A warm-up second of orders goes first and is left out, so that the group has joined and the workers are
running when the measured orders arrive. The run ends once every order is stored and the outbox is empty
(every event confirmed by Kafka); then both topics are read back from Kafka.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

import psycopg
from confluent_kafka import ConsumerGroupState, TopicPartition

from bench.common import bench_settings, env_for, fresh_database
from bench.measure import stop
from ordersctl.adapters.kafka_scan import scan_partition
from ordersctl.adapters.kafka_topics import TopicAdmin
from ordersctl.config import Settings
from ordersctl.domain.generator import Message, OrderGenerator
from ordersctl.pipeline.publish import publish
from ordersctl.runtime import Runtime

WARM_UP_SECONDS = 1.0
DRAIN_TIMEOUT = 120.0


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def run(args: argparse.Namespace, profile: str) -> dict[str, Any]:
    workers = int(args.workers.split(",")[-1])
    count = int(args.rate * args.seconds)
    warm = int(args.rate * WARM_UP_SECONDS)
    print(f"latency: generating {warm + count} orders ...", file=sys.stderr)
    messages = [m for m in OrderGenerator(seed=77).messages(warm + count) if m.kind == "valid"]
    with fresh_database() as dsn:
        settings = bench_settings(dsn, f"bench{uuid.uuid4().hex[:8]}")
        rt = Runtime(settings)
        try:
            admin = TopicAdmin(rt.kafka_admin, settings.kafka)
            for name in (settings.kafka.orders_topic, settings.kafka.dlq_topic, settings.kafka.events_topic):
                admin.ensure(name, args.partitions, 1)
            sent = _produce_while_consuming(rt, settings, dsn, messages, warm, args, workers)
            order_times = _timestamps(rt, settings.kafka.orders_topic, args.partitions)
            event_times = _timestamps(rt, settings.kafka.events_topic, args.partitions)
            rt.kafka_admin.delete_topics(
                [settings.kafka.orders_topic, settings.kafka.dlq_topic, settings.kafka.events_topic]
            )
        finally:
            rt.close()
    measured = [m.key for m in messages[warm:]]
    latencies = sorted(event_times[k] - order_times[k] for k in measured if k in event_times)
    return {
        "mode": "latency",
        "postgres_profile": profile,
        "durable": profile == "durable",
        "workers": workers,
        "rate": args.rate,
        "rate_achieved": sent["rate"],
        "seconds": args.seconds,
        "orders": len(measured),
        "missing_events": len(measured) - len(latencies),
        "latency_ms": {
            "p50": percentile(latencies, 0.50),
            "p90": percentile(latencies, 0.90),
            "p99": percentile(latencies, 0.99),
            "max": latencies[-1],
            "mean": round(sum(latencies) / len(latencies), 1),
        },
    }


def _produce_while_consuming(
    rt: Runtime,
    settings: Settings,
    dsn: str,
    messages: list[Message],
    warm: int,
    args: argparse.Namespace,
    workers: int,
) -> dict[str, float]:
    topic = settings.kafka.orders_topic
    command = [sys.executable, "-m", "ordersctl", "consume", "--workers", str(workers)]
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(command, env=env_for(settings), stdout=subprocess.DEVNULL, stderr=log)
        try:
            publish(rt.producer(), topic, messages[:warm], rate=args.rate)
            _wait_stored(dsn, warm, proc, log)
            _wait_group_stable(rt, settings.kafka.group_id, workers)
            print(f"latency: producing {len(messages) - warm} orders at {args.rate:.0f}/s ...", file=sys.stderr)
            result = publish(rt.producer(), topic, messages[warm:], rate=args.rate)
            _wait_stored(dsn, len(messages), proc, log)
        finally:
            stop(proc)
    return {"rate": result.sent / result.seconds if result.seconds else 0.0}


def _wait_stored(dsn: str, expected: int, proc: subprocess.Popen[bytes], log: Any) -> None:
    """Until ``expected`` orders are stored and the outbox is empty (each of their events confirmed)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM outbox)").fetchone()
            if row is not None and row[0] >= expected and row[1] == 0:
                return
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"consume exited with {proc.returncode}:\n{log.read()[-3000:]}")
            time.sleep(0.2)
    raise RuntimeError(f"{expected} orders were not stored and published within {DRAIN_TIMEOUT:.0f} s")


def _wait_group_stable(rt: Runtime, group: str, members: int) -> None:
    """Until every worker has joined and holds partitions: a rebalance during the measured orders would be a
    start-up cost, not the steady state the mode measures."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        described = rt.kafka_admin.describe_consumer_groups([group])[group].result(timeout=10)
        assigned = [m for m in described.members if m.assignment and m.assignment.topic_partitions]
        if described.state == ConsumerGroupState.STABLE and len(assigned) == members:
            return
        time.sleep(0.2)
    raise RuntimeError(f"consumer group {group} did not settle with {members} members")


def _timestamps(rt: Runtime, topic: str, partitions: int) -> dict[bytes, int]:
    """Key -> the earliest record's timestamp (ms) in ``topic``; events are at least once, so the first counts."""
    consumer = rt.consumer(group_id=f"latency-{uuid.uuid4().hex[:8]}")
    found: dict[bytes, int] = {}
    for partition in range(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        for msg in scan_partition(consumer, topic, partition, low, high):
            key, (_, stamp) = msg.key() or b"", msg.timestamp()
            found[key] = min(stamp, found.get(key, stamp))
    consumer.close()
    return found
