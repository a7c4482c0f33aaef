"""The faults, each run to its end by one call, and the seeded schedule that orders them.

Faults run in lanes (processes, brokers, infrastructure), one at a time per lane and the lanes at once, as
faults meet in production: a broker can die while a worker is being killed, never two brokers at once (with
replication factor 3 and min.insync.replicas=2, two down would stop every write by design)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from confluent_kafka.admin import AdminClient

from chaos.controls import Controls
from chaos.partitions import Partitions
from chaos.processes import Fleet
from chaos.run_files import Fault

LANES: dict[str, tuple[str, ...]] = {
    "processes": ("worker-kill", "host-loss", "worker-zombie", "worker-partition"),
    "brokers": ("leader-kill", "broker-pause", "relay-broker-loss", "broker-partition"),
    "infrastructure": ("pg-crash", "redis-restart", "pg-partition", "redis-partition"),
}
# The PostgreSQL a run is pointed at (--pg) decides the PostgreSQL faults of the infrastructure lane: the plain
# server's crash and partition, or a Citus worker node killed -9 (the coordinator, which ordersctl connects to,
# stays), or the HA primary killed -9 (the secondary is promoted). Kinds aimed at a PostgreSQL the run does not
# use would fail to inject, or worse, hit another stack.
PG_FAULTS: dict[str, tuple[str, ...]] = {
    "plain": ("pg-crash", "pg-partition"),
    "citus": ("citus-worker-kill",),
    "ha": ("ha-primary-kill",),
}
KINDS = tuple(kind for kinds in LANES.values() for kind in kinds)  # the plain stack's: `make chaos`
EVERY_KIND = (*KINDS, *(k for pg, kinds in PG_FAULTS.items() if pg != "plain" for k in kinds))
PARTITION_KINDS = ("worker-partition", "broker-partition", "pg-partition", "redis-partition")
CITUS_WORKERS = (1, 2)  # the Citus stack's worker nodes (scripts/stack citus-kill N); 0 is the coordinator


def lanes(pg: str = "plain") -> dict[str, tuple[str, ...]]:
    """The lanes and their kinds against this PostgreSQL (``PG_FAULTS``'s keys)."""
    if pg == "plain":
        return dict(LANES)  # in its own order: a seed gives the plan it always gave
    own, plain = PG_FAULTS[pg], PG_FAULTS["plain"]
    infrastructure = tuple(k for k in LANES["infrastructure"] if k not in plain) + own
    return {**LANES, "infrastructure": infrastructure}


@dataclass(frozen=True)
class StackPorts:
    """The stack's own ports on this machine, which partitions drop (never any other)."""

    postgres: tuple[int, ...]  # one server's, or each host's of a multi-host DSN (HA)
    redis: int
    brokers: dict[int, int]  # node id -> its client port; its controller listens on the next one up

    def every(self) -> list[int]:
        return [*self.postgres, self.redis, *self.brokers.values()]


def postgres_ports(dsn: str) -> tuple[int, ...]:
    """The DSN's PostgreSQL port, or each host's of a multi-host DSN (``host=a,b port=1,2``; 5432 left out)."""
    ports = str(psycopg.conninfo.conninfo_to_dict(dsn).get("port") or "")
    return tuple(int(port or 5432) for port in ports.split(","))


@dataclass(frozen=True)
class Timing:
    """How long faults last; the short form shortens them."""

    session_timeout: float = 10.0  # the consumers' session.timeout.ms: a zombie sleeps past it
    broker_down: float = 15.0
    broker_pause: float = 30.0
    pg_down: float = 5.0
    redis_down: float = 8.0
    host_down: float = 10.0
    partition: tuple[float, float] = (30.0, 60.0)  # a partition lasts a random time in this range
    citus_down: float = 20.0  # a Citus worker node killed -9 is started again after this (issue #23)
    ha_down: float = 30.0  # the HA primary killed -9 is started again after this: the failover takes about 21 s


def schedule(seed: int, per_kind: int, pg: str = "plain") -> dict[str, list[str]]:
    """Per lane, its faults against this PostgreSQL (``lanes``) in a seeded order: ``per_kind`` of every kind."""
    rng = random.Random(seed)
    plan = {}
    for lane, kinds in lanes(pg).items():
        faults = [kind for kind in kinds for _ in range(per_kind)]
        rng.shuffle(faults)
        plan[lane] = faults
    return plan


class Injector:
    """Runs one fault to its end and says what it did."""

    def __init__(self, controls: Controls, fleet: Fleet, bootstrap: str, topics: tuple[str, str], timing: Timing,
                 rng: random.Random, partitions: Partitions | None = None, ports: StackPorts | None = None,
                 dsn: str = "") -> None:  # fmt: skip
        self.partitions, self.ports, self.dsn = partitions, ports, dsn
        self.controls = controls
        self.fleet = fleet
        self.bootstrap = bootstrap
        self.orders_topic, self.events_topic = topics
        self.timing = timing
        self.rng = rng
        # What puts the stack back if the run is stopped halfway through a fault: a paused broker left paused
        # would quietly shrink the cluster for whatever runs next.
        self._undo: dict[str, Callable[[], None]] = {}

    def undo_all(self) -> None:
        for key, undo in list(self._undo.items()):
            with contextlib.suppress(Exception):
                undo()
            self._undo.pop(key, None)

    def _hold(self, key: str, seconds: float, undo: Callable[[], None]) -> None:
        """Hold a fault for ``seconds``, then undo it; ``undo`` stays on record meanwhile (``undo_all``)."""
        self._undo[key] = undo
        time.sleep(seconds)
        undo()
        self._undo.pop(key, None)

    def run(self, kind: str) -> Fault:
        action: Callable[[], tuple[str, float]] = getattr(self, "_" + kind.replace("-", "_"))
        if kind in PARTITION_KINDS:
            time.sleep(self.rng.uniform(0, 5))  # a random moment in the lane's turn
        start = time.time()
        target, end = action()
        return Fault(kind, target, start, end)

    def _worker_kill(self) -> tuple[str, float]:
        pid = self.fleet.any_worker(self.rng)
        os.kill(pid, signal.SIGKILL)
        return f"worker pid {pid}", time.time()

    def _host_loss(self) -> tuple[str, float]:
        host = self.fleet.kill_host(self.rng)
        time.sleep(self.timing.host_down)
        self.fleet.start_host(host)
        return f"supervisor {host}", time.time()

    def _worker_zombie(self) -> tuple[str, float]:
        pid = self.fleet.any_worker(self.rng)
        os.kill(pid, signal.SIGSTOP)
        self._hold("zombie", self.timing.session_timeout + 5, lambda: os.kill(pid, signal.SIGCONT))
        return f"worker pid {pid}", time.time()

    def _leader(self, topic: str) -> int:
        meta = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=30).topics[topic]
        leaders = sorted({p.leader for p in meta.partitions.values() if p.leader >= 0})
        return self.rng.choice(leaders)

    def _broker_down(self, topic: str) -> tuple[str, float]:
        node = self._leader(topic)
        self.controls.run("broker_kill", node)
        self._hold("broker", self.timing.broker_down, lambda: self.controls.run("broker_start", node))
        return f"broker {node} (leader on {topic})", time.time()

    def _leader_kill(self) -> tuple[str, float]:
        return self._broker_down(self.orders_topic)

    def _relay_broker_loss(self) -> tuple[str, float]:
        return self._broker_down(self.events_topic)

    def _broker_pause(self) -> tuple[str, float]:
        node = self._leader(self.orders_topic)
        self.controls.run("broker_pause", node)
        self._hold("broker", self.timing.broker_pause, lambda: self.controls.run("broker_resume", node))
        return f"broker {node}", time.time()

    def _pg_crash(self) -> tuple[str, float]:
        self.controls.run("pg_crash")
        self._hold("pg", self.timing.pg_down, lambda: self.controls.run("pg_start"))
        return "postgres", time.time()

    def _citus_worker_kill(self) -> tuple[str, float]:
        """kill -9 of a Citus worker node's postmaster: the shards it holds are out of reach until it is back."""
        node = self.rng.choice(CITUS_WORKERS)
        self.controls.run("citus_kill", node)
        self._hold("citus", self.timing.citus_down, lambda: self.controls.run("citus_start", node))
        return f"citus worker {node}", time.time()

    def _ha_primary_kill(self) -> tuple[str, float]:
        """kill -9 of the HA primary's keeper and postmaster (its node gone, as in a crash): the monitor promotes
        the secondary. The old primary is started again (as the new secondary) ``timing.ha_down`` after the kill;
        the failover time (until a node takes writes) is part of the fault's target, for the report."""
        self.controls.run("ha_kill_primary")
        killed = time.time()
        failover = self._writable_within(self.timing.ha_down)
        rest = max(0.0, killed + self.timing.ha_down - time.time())
        self._hold("ha", rest, lambda: self.controls.run("ha_heal"))
        took = "no node took writes" if failover is None else f"a node took writes {failover:.1f} s after the kill"
        return f"postgres primary ({took})", time.time()

    def _writable_within(self, seconds: float) -> float | None:
        """Seconds until the DSN (multi-host, read-write) gives a session that takes writes; None if none did."""
        start = time.time()
        while self.dsn and time.time() - start < seconds:
            with contextlib.suppress(psycopg.Error), psycopg.connect(self.dsn, connect_timeout=1) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                if row is not None and row[0] is False:
                    return time.time() - start
            time.sleep(0.2)
        return None

    def _partition(self, name: str, target: str, cut: Callable[[Partitions, StackPorts], None]) -> tuple[str, float]:
        """A partition for a random time in ``timing.partition`` (it starts at a random moment: ``run``)."""
        assert self.partitions is not None and self.ports is not None, "partitions need the stack's ports"
        partitions = self.partitions
        seconds = self.rng.uniform(*self.timing.partition)
        cut(partitions, self.ports)
        self._hold(name, seconds, lambda: partitions.heal(name))
        return target, time.time()

    def _pg_partition(self) -> tuple[str, float]:
        assert self.ports is not None
        return self._partition("pg", f"postgres :{','.join(map(str, self.ports.postgres))}",
                               lambda p, ports: p.drop_ports("pg", list(ports.postgres)))  # fmt: skip

    def _redis_partition(self) -> tuple[str, float]:
        assert self.ports is not None
        return self._partition("redis", f"redis :{self.ports.redis}",
                               lambda p, ports: p.drop_ports("redis", [ports.redis]))  # fmt: skip

    def _broker_partition(self) -> tuple[str, float]:
        assert self.ports is not None
        node = self._leader(self.orders_topic)
        port = self.ports.brokers[node]
        return self._partition("broker", f"broker {node} :{port},{port + 1}",
                               lambda p, _ports: p.drop_ports("broker", [port, port + 1]))  # fmt: skip

    def _worker_partition(self) -> tuple[str, float]:
        pid = self.fleet.any_worker(self.rng)
        return self._partition("worker", f"worker pid {pid}",
                               lambda p, ports: p.isolate("worker", pid, ports.every()))  # fmt: skip

    def _redis_restart(self) -> tuple[str, float]:
        self.controls.run("redis_stop")
        self._hold("redis", self.timing.redis_down, lambda: self.controls.run("redis_start"))
        return "redis", time.time()
