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

from confluent_kafka.admin import AdminClient

from chaos.controls import Controls
from chaos.processes import Fleet
from chaos.run_files import Fault

LANES: dict[str, tuple[str, ...]] = {
    "processes": ("worker-kill", "host-loss", "worker-zombie"),
    "brokers": ("leader-kill", "broker-pause", "relay-broker-loss"),
    "infrastructure": ("pg-crash", "redis-restart"),
}
KINDS = tuple(kind for kinds in LANES.values() for kind in kinds)


@dataclass(frozen=True)
class Timing:
    """How long faults last; the short form shortens them."""

    session_timeout: float = 10.0  # the consumers' session.timeout.ms: a zombie sleeps past it
    broker_down: float = 15.0
    broker_pause: float = 30.0
    pg_down: float = 5.0
    redis_down: float = 8.0
    host_down: float = 10.0


def schedule(seed: int, per_kind: int) -> dict[str, list[str]]:
    """Per lane, its faults in a seeded order: ``per_kind`` of every kind."""
    rng = random.Random(seed)
    plan = {}
    for lane, kinds in LANES.items():
        faults = [kind for kind in kinds for _ in range(per_kind)]
        rng.shuffle(faults)
        plan[lane] = faults
    return plan


class Injector:
    """Runs one fault to its end and says what it did."""

    def __init__(self, controls: Controls, fleet: Fleet, bootstrap: str, topics: tuple[str, str], timing: Timing,
                 rng: random.Random) -> None:  # fmt: skip
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

    def _while(self, key: str, undo: Callable[[], None], seconds: float) -> None:
        """Hold a fault for ``seconds``, with ``undo`` on record until it is undone by the caller."""
        self._undo[key] = undo
        time.sleep(seconds)

    def run(self, kind: str) -> Fault:
        action: Callable[[], tuple[str, float]] = getattr(self, "_" + kind.replace("-", "_"))
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
        self._while("zombie", lambda: os.kill(pid, signal.SIGCONT), self.timing.session_timeout + 5)
        os.kill(pid, signal.SIGCONT)
        self._undo.pop("zombie", None)
        return f"worker pid {pid}", time.time()

    def _leader(self, topic: str) -> int:
        meta = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(topic, timeout=30).topics[topic]
        leaders = sorted({p.leader for p in meta.partitions.values() if p.leader >= 0})
        return self.rng.choice(leaders)

    def _broker_down(self, topic: str) -> tuple[str, float]:
        node = self._leader(topic)
        self.controls.run("broker_kill", node)
        self._while("broker", lambda: self.controls.run("broker_start", node), self.timing.broker_down)
        self.controls.run("broker_start", node)
        self._undo.pop("broker", None)
        return f"broker {node} (leader on {topic})", time.time()

    def _leader_kill(self) -> tuple[str, float]:
        return self._broker_down(self.orders_topic)

    def _relay_broker_loss(self) -> tuple[str, float]:
        return self._broker_down(self.events_topic)

    def _broker_pause(self) -> tuple[str, float]:
        node = self._leader(self.orders_topic)
        self.controls.run("broker_pause", node)
        self._while("broker", lambda: self.controls.run("broker_resume", node), self.timing.broker_pause)
        self.controls.run("broker_resume", node)
        self._undo.pop("broker", None)
        return f"broker {node}", time.time()

    def _pg_crash(self) -> tuple[str, float]:
        self.controls.run("pg_crash")
        self._while("pg", lambda: self.controls.run("pg_start"), self.timing.pg_down)
        self.controls.run("pg_start")
        self._undo.pop("pg", None)
        return "postgres", time.time()

    def _redis_restart(self) -> tuple[str, float]:
        self.controls.run("redis_stop")
        self._while("redis", lambda: self.controls.run("redis_start"), self.timing.redis_down)
        self.controls.run("redis_start")
        self._undo.pop("redis", None)
        return "redis", time.time()
