"""The processes under test: consume supervisors standing in for hosts, and one API server."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ordersctl.process_name import WORKER_PREFIX


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in task.read_text().split()]
    return found


class Fleet:
    """``hosts`` supervisors of ``ordersctl consume --workers N`` in one group, started and restarted here."""

    def __init__(self, env: dict[str, str], logs: Path, hosts: int = 2, workers: int = 2) -> None:
        self.env = env
        self.logs = logs
        self.workers = workers
        self.hosts: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._count = hosts
        self.server: subprocess.Popen[bytes] | None = None

    def _ordersctl(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen([sys.executable, "-m", "ordersctl", *args], env=self.env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)  # fmt: skip

    def start(self) -> None:
        for host in range(self._count):
            self.start_host(host)

    def start_host(self, host: int) -> None:
        with self._lock:
            self.hosts[host] = self._ordersctl(f"consume-{host}", "consume", "--workers", str(self.workers))

    def serve(self, port: int) -> None:
        self.server = self._ordersctl("serve", "serve", "--port", str(port), "--warm-limit", "0")

    def workers_of(self, pid: int) -> list[int]:
        """A supervisor's worker processes: the children that name themselves ``ordersctl-w<i>`` (forked or spawned),
        not the zygote they are forked from nor multiprocessing's resource tracker."""
        found = []
        for child in children(pid):
            with contextlib.suppress(OSError):
                if Path(f"/proc/{child}/comm").read_text().startswith(WORKER_PREFIX):
                    found.append(child)
        return found

    def any_worker(self, rng: random.Random, timeout: float = 60.0) -> int:
        """A running worker of any host; waits for one (a host just started or restarted has none yet)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pids = [w for p in self.hosts.values() if p.poll() is None for w in self.workers_of(p.pid)]
            if pids:
                return rng.choice(sorted(pids))
            if time.monotonic() > deadline:
                raise RuntimeError(f"no worker process is running after {timeout:.0f} s")
            time.sleep(0.5)

    def kill_host(self, rng: random.Random) -> int:
        """kill -9 of a supervisor and its workers at once, as when a host disappears."""
        with self._lock:
            host = rng.choice(sorted(h for h, p in self.hosts.items() if p.poll() is None))
            proc = self.hosts[host]
            victims = [proc.pid, *children(proc.pid)]
            for pid in victims:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait()
        return host

    def alive(self) -> bool:
        with self._lock:
            return all(p.poll() is None for p in self.hosts.values())

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM everything (workers finish their batch and leave the group), then kill what is left."""
        with self._lock:
            procs = [*self.hosts.values(), *([self.server] if self.server else [])]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                for pid in [p.pid, *children(p.pid)]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                p.wait()
