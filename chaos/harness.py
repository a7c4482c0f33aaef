"""One chaos run: prepare the stack, produce, consume and serve under a seeded fault schedule, drain, check."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from chaos.controls import Controls
from chaos.faults import PARTITION_KINDS, Injector, StackPorts, Timing, postgres_ports, schedule
from chaos.fresh import delete_topics, recreate_database
from chaos.observers import Reader, Sampler
from chaos.orders import messages
from chaos.partitions import Partitions
from chaos.processes import Fleet
from chaos.run_files import RunFiles, RunSpec

Delivered = Callable[[KafkaError | None, Message], None]


@dataclass
class Options:
    out: Path
    seed: int = 1
    count: int = 1_000_000
    per_kind: int = 30
    poison_every: int = 97
    dsn: str = "postgresql://ordersctl:ordersctl@127.0.0.1:54329/orders_chaos"
    bootstrap: str = "127.0.0.1:29092,127.0.0.1:29094,127.0.0.1:29096"
    redis: str = "redis://127.0.0.1:63799/0"
    prefix: str = "chaos"
    partitions: int = 6
    replication_factor: int = 3
    port: int = 18181
    recreate_db: bool = False
    pg: str = "plain"  # the PostgreSQL behind dsn: plain, citus (dsn: the coordinator) or ha (chaos.faults.PG_FAULTS)
    gap: float = 5.0  # seconds between two faults of one lane
    timing: Timing = field(default_factory=Timing)
    controls: Controls = field(default_factory=Controls)
    drain_timeout: float = 600.0


def _log(text: str) -> None:
    print(f"chaos: {text}", file=sys.stderr, flush=True)


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # in the main thread: the run puts the stack back before it exits


class Run:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.files = RunFiles(opts.out)
        p = opts.prefix
        self.spec = RunSpec(opts.seed, opts.count, opts.poison_every, opts.dsn, opts.bootstrap, f"{p}.orders",
                            f"{p}.orders.dlq", f"{p}.orders.events", f"{p}-group", opts.partitions)  # fmt: skip
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_")} | {
            "ORDERS_POSTGRES__DSN": opts.dsn, "ORDERS_KAFKA__BOOTSTRAP_SERVERS": opts.bootstrap,
            "ORDERS_REDIS__URL": opts.redis,
            "ORDERS_KAFKA__ORDERS_TOPIC": self.spec.orders_topic, "ORDERS_KAFKA__DLQ_TOPIC": self.spec.dlq_topic,
            "ORDERS_KAFKA__EVENTS_TOPIC": self.spec.events_topic, "ORDERS_KAFKA__GROUP_ID": self.spec.group,
            "ORDERS_LOG__FORMAT": "json",
        }  # fmt: skip
        self.stop = threading.Event()
        self.fleet = Fleet(self.env, opts.out)
        self.sampler = Sampler(self.spec, self.files, self.stop)
        self.reader = Reader(self.spec, self.files, opts.port, self.stop)
        self.produced = 0
        self.partitions = Partitions()

    def _ordersctl(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "ordersctl", *args], env=self.env, check=True, timeout=300)

    def prepare(self) -> None:
        self.files.start_afresh()
        if self.o.recreate_db:
            # A fresh start is a fresh database and fresh topics: an earlier run's events and dead letters under
            # the same names would be counted as this run's.
            recreate_database(self.o.dsn, self.o.pg)
            delete_topics(self.o.bootstrap, [self.spec.orders_topic, self.spec.dlq_topic, self.spec.events_topic])
        self._ordersctl("db", "migrate")
        # The replication factor is asked for, not left to the cluster size: a broker that happens to be down at
        # this moment must fail the run's start, not give it topics that a single broker loss stalls.
        self._ordersctl("topics", "create", "--dlq", "--partitions", str(self.o.partitions),
                        "--replication-factor", str(self.o.replication_factor))  # fmt: skip
        self.files.write_spec(self.spec)

    def produce(self, rate: float) -> None:
        """The harness's own producer: idempotent, acks=all; a message whose delivery failed is sent again."""
        producer = Producer({"bootstrap.servers": self.o.bootstrap, "enable.idempotence": True, "acks": "all",
                             "linger.ms": 20, "compression.type": "lz4"})  # fmt: skip
        failed: list[tuple[bytes, bytes]] = []

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failed.append((msg.key() or b"", msg.value() or b""))

        started = time.monotonic()
        for n, m in enumerate(messages(self.o.seed, self.o.count, self.o.poison_every)):
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
            self._send(producer, m.uid.encode(), m.value, delivered)
            self.produced = n + 1
        while producer.flush(5) or failed:
            for key, value in failed[:]:
                failed.remove((key, value))
                self._send(producer, key, value, delivered)
        _log(f"produced {self.produced} messages")

    def _send(self, producer: Producer, key: bytes, value: bytes, delivered: Delivered) -> None:
        while True:
            try:
                producer.produce(self.spec.orders_topic, key=key, value=value, on_delivery=delivered)
                producer.poll(0)
                return
            except BufferError:
                producer.poll(0.1)

    def lane(self, name: str, kinds: list[str], injector: Injector) -> None:
        try:
            self._lane(name, kinds, injector)
        except Exception as exc:
            # A fault that could not be injected makes the run fail, loudly: a quiet lane would pass untested.
            self.files.append("errors", {"lane": name, "error": f"{type(exc).__name__}: {exc}"})
            _log(f"{name}: fault injection failed: {traceback.format_exc()}")

    def _lane(self, name: str, kinds: list[str], injector: Injector) -> None:
        for kind in kinds:
            if self.stop.is_set():
                return
            fault = injector.run(kind)
            self.files.append("faults", vars(fault))
            self.sampler.snapshot_now.set()
            _log(f"{name}: {fault.kind} on {fault.target} ({fault.end - fault.start:.1f} s)")
            self.stop.wait(self.o.gap)

    def drained(self) -> bool:
        s = self.sampler.latest
        return s.get("lag") == 0 and s.get("outbox") == 0 and self.fleet.alive()

    def execute(self) -> None:
        """The run, with the partitions' nftables table always deleted at its end (also when interrupted)."""
        try:
            self._execute()
        finally:
            self.partitions.close()

    def stack_ports(self) -> StackPorts:
        brokers = AdminClient({"bootstrap.servers": self.o.bootstrap}).list_topics(timeout=30).brokers
        return StackPorts(postgres=postgres_ports(self.o.dsn), redis=urlsplit(self.o.redis).port or 6379,
                          brokers={node: b.port for node, b in brokers.items()})  # fmt: skip

    def _rate(self, plan: dict[str, list[str]]) -> float:
        """Orders/s so that orders flow for as long as the faults last, and the last faults too meet a loaded
        pipeline: a fault takes about a broker pause, a partition its mean length (and its random wait)."""
        per_fault = max(self.o.timing.broker_pause, sum(self.o.timing.partition) / 2 + 2.5) + self.o.gap
        fault_seconds = max(len(k) for k in plan.values()) * per_fault
        return max(200.0, self.o.count / max(fault_seconds, 1.0))

    def _wait_drained(self) -> None:
        deadline = time.monotonic() + self.o.drain_timeout
        while not self.drained() and time.monotonic() < deadline:
            time.sleep(1)
        _log("drained" if self.drained() else f"not drained within {self.o.drain_timeout:.0f} s")

    def _execute(self) -> None:
        plan = schedule(self.o.seed, self.o.per_kind, self.o.pg)
        shown = "; ".join(f"{lane}: {', '.join(k)}" for lane, k in plan.items())
        _log(f"seed {self.o.seed}, PostgreSQL {self.o.pg}; schedule: {shown}")
        self.prepare()
        if any(kind in PARTITION_KINDS for kinds in plan.values() for kind in kinds):
            self.partitions.open()  # deletes what an interrupted run left behind
        ports = self.stack_ports()
        self.files.append("schedule", {"planned": sum(len(kinds) for kinds in plan.values()), "lanes": plan})
        self.fleet.start()
        self.fleet.serve(self.o.port)
        self.sampler.start()
        self.reader.start()
        producer = threading.Thread(target=self.produce, args=(self._rate(plan),), name="producer", daemon=True)
        producer.start()
        topics = (self.spec.orders_topic, self.spec.events_topic)
        lanes_args = [
            (lane, kinds, Injector(self.o.controls, self.fleet, self.o.bootstrap, topics, self.o.timing,
                                   random.Random(f"{self.o.seed}-{lane}"), self.partitions, ports, self.o.dsn))
            for lane, kinds in plan.items()
        ]  # fmt: skip
        lanes = [threading.Thread(target=self.lane, name=a[0], args=a, daemon=True) for a in lanes_args]
        injectors = [injector for _, _, injector in lanes_args]
        previous = signal.signal(signal.SIGTERM, _stopped)
        try:
            for t in lanes:
                t.start()
            for t in [producer, *lanes]:
                t.join()
        except (KeyboardInterrupt, SystemExit):
            _log("stopped: putting back what the faults in progress took away")
            self.stop.set()
            for injector in injectors:
                injector.undo_all()
            self.fleet.stop()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        self._wait_drained()
        self.sampler.snapshot_now.set()
        time.sleep(2)
        self.stop.set()
        self.sampler.join(10)
        self.reader.join(10)
        self.fleet.stop()
