"""Latency mode of bench/ingest.py: orders produced at steady rates while ``ordersctl consume`` runs, and for
each of them the time from its record in the orders topic to its "order saved" event: the event's Kafka
timestamp minus the order record's (both CreateTime, set by their producers on this machine; milliseconds).

One consume process serves the whole run. A warm-up second of orders goes first and is left out, so that the
group has joined and the workers are running when the measured orders arrive. Then each rate in turn (200,
2,000 and 5,000 orders/s by default) for ``--seconds``, each phase drained (every order stored, the outbox
empty) before the next; a phase's first second is reported apart from the rest, its steady state. Last, the
cold path: ``--cold`` times, one lone order after ``--idle`` seconds without any (the fetch's and the relay's
wake-up). Both topics are read back from Kafka at the end.
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
from dataclasses import dataclass
from typing import Any

import psycopg
from confluent_kafka import ConsumerGroupState, TopicPartition

from bench.common import bench_settings, env_for, fresh_database, ordersctl
from bench.measure import stop
from ordersctl.adapters.kafka_scan import scan_partition
from ordersctl.adapters.kafka_topics import TopicAdmin
from ordersctl.config import Settings
from ordersctl.domain.generator import Message, OrderGenerator
from ordersctl.pipeline.publish import publish
from ordersctl.runtime import Runtime

WARM_UP_SECONDS = 1.0
FIRST_SECONDS = 1.0  # a phase's first second, reported apart from its steady state
DRAIN_TIMEOUT = 120.0
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999))
PARTS = (
    ("first_second", "first second"),
    ("steady", "steady"),
    ("steady_to_store", " ..to store start"),
    ("steady_store_to_event", " ..store to event"),
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def distribution(latencies: Sequence[float]) -> dict[str, Any]:
    """p50, p90, p99, p99.9, max and mean (ms) of ``latencies``, and how many there were."""
    ordered = sorted(latencies)
    if not ordered:
        return {"orders": 0}
    figures: dict[str, Any] = {"orders": len(ordered)}
    figures.update((name, percentile(ordered, q)) for name, q in QUANTILES)
    figures["max"] = ordered[-1]
    figures["mean"] = round(sum(ordered) / len(ordered), 1)
    return figures


@dataclass(frozen=True)
class Phase:
    """Orders produced at one rate: ``keys`` in the order they were sent."""

    rate: float
    keys: list[bytes]
    rate_achieved: float = 0.0


def phase_result(
    phase: Phase, order_times: dict[bytes, int], event_times: dict[bytes, int], stored_times: dict[bytes, float]
) -> dict[str, Any]:
    """A phase's distributions: its first second (the first ``rate`` orders, sent paced) and the rest; the steady
    state also split at the start of the transaction that stored each order (``orders.stored_at``): the wait
    before the store (producer, broker, fetch, batching) and the rest (store, commit, relay)."""
    first = int(phase.rate * FIRST_SECONDS)

    def latencies(keys: list[bytes]) -> list[float]:
        return [float(event_times[k] - order_times[k]) for k in keys if k in event_times and k in order_times]

    steady = [k for k in phase.keys[first:] if k in event_times and k in order_times and k in stored_times]
    measured = latencies(phase.keys)
    return {
        "rate": phase.rate,
        "rate_achieved": round(phase.rate_achieved, 1),
        "orders": len(phase.keys),
        "missing_events": len(phase.keys) - len(measured),
        "first_second": distribution(latencies(phase.keys[:first])),
        "steady": distribution(latencies(phase.keys[first:])),
        "steady_to_store": distribution([stored_times[k] - order_times[k] for k in steady]),
        "steady_store_to_event": distribution([event_times[k] - stored_times[k] for k in steady]),
    }


def run(args: argparse.Namespace, profile: str) -> dict[str, Any]:
    workers = int(args.workers.split(",")[-1])
    rates = [float(r) for r in str(args.rate).split(",")]
    warm = int(rates[0] * WARM_UP_SECONDS)
    counts = [int(rate * args.seconds) for rate in rates]
    total = warm + sum(counts) + args.cold
    print(f"latency: generating {total} orders ...", file=sys.stderr)
    messages = [m for m in OrderGenerator(seed=77).messages(total) if m.kind == "valid"]
    with fresh_database() as dsn:
        settings = bench_settings(dsn, f"bench{uuid.uuid4().hex[:8]}")
        rt = Runtime(settings)
        try:
            admin = TopicAdmin(rt.kafka_admin, settings.kafka)
            for name in (settings.kafka.orders_topic, settings.kafka.dlq_topic, settings.kafka.events_topic):
                admin.ensure(name, args.partitions, 1)
            phases, cold = _produce_while_consuming(rt, settings, dsn, messages, warm, rates, counts, args, workers)
            order_times = _timestamps(rt, settings.kafka.orders_topic, args.partitions)
            stored_times = _stored_times(dsn)
            event_times = _timestamps(rt, settings.kafka.events_topic, args.partitions)
            rt.kafka_admin.delete_topics(
                [settings.kafka.orders_topic, settings.kafka.dlq_topic, settings.kafka.events_topic]
            )
        finally:
            rt.close()
    cold_ms = [float(event_times[k] - order_times[k]) for k in cold if k in event_times]
    return {
        "mode": "latency",
        "postgres_profile": profile,
        "durable": profile == "durable",
        "workers": workers,
        "partitions": args.partitions,
        "seconds": args.seconds,
        "rates": [phase_result(phase, order_times, event_times, stored_times) for phase in phases],
        "cold": {"idle_seconds": args.idle, "samples_ms": cold_ms, "missing_events": len(cold) - len(cold_ms)},
    }


def _produce_while_consuming(
    rt: Runtime,
    settings: Settings,
    dsn: str,
    messages: list[Message],
    warm: int,
    rates: list[float],
    counts: list[int],
    args: argparse.Namespace,
    workers: int,
) -> tuple[list[Phase], list[bytes]]:
    topic = settings.kafka.orders_topic
    command = ordersctl("consume", "--workers", str(workers))
    phases: list[Phase] = []
    cold: list[bytes] = []
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen(command, env=env_for(settings), stdout=subprocess.DEVNULL, stderr=log)
        try:
            publish(rt.producer(), topic, messages[:warm], rate=rates[0])
            stored = warm
            _wait_stored(dsn, stored, proc, log)
            _wait_group_stable(rt, settings.kafka.group_id, workers)
            for rate, count in zip(rates, counts, strict=True):
                batch = messages[stored : stored + count]
                print(f"latency: producing {len(batch)} orders at {rate:.0f}/s ...", file=sys.stderr)
                result = publish(rt.producer(), topic, batch, rate=rate)
                stored += len(batch)
                _wait_stored(dsn, stored, proc, log)
                phases.append(Phase(rate, [m.key for m in batch], result.rate))
            for lone in messages[stored : stored + args.cold]:
                print(f"latency: one order after {args.idle:.0f} s idle ...", file=sys.stderr)
                time.sleep(args.idle)
                publish(rt.producer(), topic, [lone])
                stored += 1
                _wait_stored(dsn, stored, proc, log)
                cold.append(lone.key)
        finally:
            stop(proc)
    return phases, cold


def _wait_stored(dsn: str, expected: int, proc: subprocess.Popen[bytes], log: Any) -> None:
    """Until ``expected`` orders are stored and the outbox is empty (each of their events confirmed)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            query = "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM outbox)"
            stored, pending = conn.execute(query).fetchone() or (0, 0)
            if stored >= expected and pending == 0:
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


def _stored_times(dsn: str) -> dict[bytes, float]:
    """order_uid -> when the transaction that stored it began (ms since the epoch, this machine's clock)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT order_uid, extract(epoch FROM stored_at) * 1000 FROM orders").fetchall()
    return {str(uid).encode(): float(ms) for uid, ms in rows}


def table(result: dict[str, Any]) -> str:
    """The run as a table: one line per rate and part (first second, steady), then the cold path."""
    head = f"{'':<22}{'orders':>8}" + "".join(f"{name + ' ms':>10}" for name, _ in QUANTILES) + f"{'max ms':>9}"
    lines = [
        f"PostgreSQL profile: {result['postgres_profile']}" + ("" if result["durable"] else " (NOT DURABLE)"),
        f"produce -> 'order saved' event; consume --workers {result['workers']}, {result['partitions']} partitions, "
        f"{result['seconds']:.0f} s per rate",
        "",
        head,
    ]
    missing = 0
    for phase in result["rates"]:
        missing += phase["missing_events"]
        for part, name in PARTS:
            if part in phase:
                lines.append(_row(f"{phase['rate_achieved']:.0f}/s {name}", phase[part]))
    cold = result["cold"]
    missing += cold["missing_events"]
    samples = ", ".join(f"{ms:.0f}" for ms in cold["samples_ms"]) or "-"
    lines += [
        "",
        f"cold path (one order after {cold['idle_seconds']:.0f} s idle), ms: {samples}",
        "",
        "latency = the event's Kafka timestamp - the order record's (both CreateTime, set by their producers)",
    ]
    if missing:
        lines.append(f"!! {missing} orders have no event")
    return "\n".join(lines)


def _row(label: str, figures: dict[str, Any]) -> str:
    if not figures["orders"]:
        return f"{label:<22}{0:>8}"
    cells = "".join(f"{figures[name]:>10.0f}" for name, _ in QUANTILES)
    return f"{label:<22}{figures['orders']:>8}{cells}{figures['max']:>9.0f}"
