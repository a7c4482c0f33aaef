"""One measured run: a command that stores orders into a fresh database, timed until every order is stored, with
the CPU each side spent (from /proc) and the peak memory of each of its processes.

The sides, over the window from just before the command starts to just after it exits:
- the command's processes (for ``ordersctl consume``: the supervisor and its worker processes): exact. The
  command is waited for without being reaped (``waitid(WNOWAIT)``), so its /proc/<pid>/stat still holds its
  final utime + stime and, in cutime + cstime, every worker it joined. multiprocessing's resource tracker is
  never joined (it outlives its parent); its CPU is added as last read.
- PostgreSQL: every process of the server the DSN reaches (postmaster, backends, background writer, WAL
  writer, checkpointer, autovacuum), exact through the postmaster's cutime. Only the bench's own probe
  connection is subtracted (its backend's CPU is read directly). Anything else the server did meanwhile, say
  another database's sessions, is included, since it cannot be told apart; "this database" is the part
  sampled from the run's own backends (a lower bound: each backend's time after its last sample is missed).
- the broker: the Kafka JVM of the local stack (.stack/kafka.pid), all of its work, whoever asked for it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.common import postmaster_pid
from bench.proc import Stat, cmdline, comm, descendants, read_stat, status_kib, tree_cpu, tree_stats
from ordersctl.process_name import WORKER_PREFIX, ZYGOTE_NAME, kernel_name

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SECONDS = 0.25  # /proc and pg_stat_activity; the count(*) probe every other sample
# Until the first order is stored, and once the last is due: the tree's CPU and the count are read this often, so
# start-up is what the command spent until then, not up to half a second of full-speed work more (at the sampling
# above it read 0.79 s for a 0.5 s start), and the time after start-up is not up to half a second too long.
STARTUP_SAMPLE_SECONDS = 0.02


@dataclass
class Figures:
    """What one run measured; CPU in seconds over the window, memory in KiB."""

    name: str
    orders: int
    seconds: float  # from the start of the command until every order was stored
    first_seconds: float = 0.0  # until the first order was stored (start-up: imports, joining the group)
    client_cpu: float = 0.0  # the command's processes, their whole lives
    workers_cpu: float | None = None  # of which the worker processes the command joined (consume), exact
    startup_cpu: float = 0.0  # of which before the first stored order (sampled)
    startup_cpu_by_process: dict[str, float] = field(default_factory=dict)  # the same, per process label
    # The steady state: from the first stored order until the last is stored and (consume) its event published, so
    # without the start-up, the idle wait before the command exits and its shutdown. None when not seen.
    steady_cpu: float | None = None
    steady_orders: int = 0  # the orders stored in that window (those after the first read of the count)
    postgres_cpu: float = 0.0  # the whole server, the probe's backend subtracted
    postgres_db_cpu: float = 0.0  # of which this run's own backends (sampled, a lower bound)
    broker_cpu: float | None = None
    peak_rss_kib: dict[str, int] = field(default_factory=dict)  # process label -> VmHWM


def broker_pid() -> int | None:
    """The local stack's Kafka JVM, or None when this machine does not run it (then no broker figure)."""
    stack = Path(os.environ.get("ORDERS_STACK_DIR", ROOT / ".stack"))
    try:
        pid = int((stack / "kafka.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if "kafka.Kafka" in cmdline(pid) else None


def _label(stat: Stat, root: int) -> str:
    line = cmdline(stat.pid)
    if "resource_tracker" in line:
        return "resource tracker"
    name = comm(stat.pid)  # forked processes share their parent's command line, not its name (ordersctl/zygote.py)
    if name == kernel_name(ZYGOTE_NAME):
        return "zygote"  # with the short-lived middle process of each fork, which has its name
    if stat.ppid == root and ("multiprocessing" in line or name.startswith(WORKER_PREFIX)):
        return f"worker (pid {stat.pid})"
    return f"{line.split(' ')[0].rsplit('/', 1)[-1]} (pid {stat.pid})"


class _Watch:
    """Samples the command's process tree and the run's PostgreSQL backends while the command runs."""

    def __init__(self, root: int, probe: psycopg.Connection[Any], root_label: str) -> None:
        self.root = root
        self._root_label = root_label
        self._probe = probe
        self.labels: dict[tuple[int, int], str] = {}
        self.peak_kib: dict[tuple[int, int], int] = {}
        self.last_cpu: dict[tuple[int, int], float] = {}
        self.backends: dict[tuple[int, int], float] = {}
        self._samples = 0
        self._known: list[int] = []

    def label(self, stat: Stat) -> str:
        """A process's label, worked out once (its command line) and kept for every later figure."""
        if stat.key not in self.labels:
            self.labels[stat.key] = self._root_label if stat.pid == self.root else _label(stat, self.root)
        return self.labels[stat.key]

    def sample(self) -> float:
        """Reads everything once; returns the command tree's CPU so far (0 when its root is gone)."""
        # Finding new processes takes a scan of all of /proc: once a second; in between, the known ones.
        self._samples += 1
        if self._samples % 4 == 1:
            self._known = [self.root] + [s.pid for s in descendants(self.root)]
        tree = [s for s in map(read_stat, self._known) if s is not None]
        for stat in tree:
            self.label(stat)
            self.last_cpu[stat.key] = stat.with_reaped
            # VmHWM is the process's own peak RSS so far: the last read before it exits is its peak.
            self.peak_kib[stat.key] = max(self.peak_kib.get(stat.key, 0), status_kib(stat.pid, "VmHWM") or 0)
        rows = self._probe.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        for (pid,) in rows:
            backend = read_stat(int(pid))
            if backend is not None:
                self.backends[backend.key] = backend.own
        return sum(s.with_reaped for s in tree)

    def orphans_cpu(self) -> float:
        """Children the root never reaps (multiprocessing's resource tracker): their CPU as last read."""
        total = 0.0
        for key, label in self.labels.items():
            if label == "resource tracker":
                now = read_stat(key[0])
                seen = self.last_cpu.get(key, 0.0)
                total += max(seen, now.with_reaped) if now is not None and now.key == key else seen
        return total


def run_measured(
    name: str, cmd: list[str], env: dict[str, str], dsn: str, expected: int, root_label: str = "main process"
) -> Figures:
    """Run ``cmd`` (which must exit by itself) and measure it until ``expected`` orders are stored in ``dsn``;
    ``root_label`` names the command's own process in the memory figures."""
    postmaster, broker = postmaster_pid(dsn), broker_pid()
    with (
        psycopg.connect(dsn, autocommit=True) as probe,
        tempfile.TemporaryFile(mode="w+") as log,
    ):
        probe_backend = _backend_pid(probe)
        pg_before, probe_before = tree_cpu(postmaster), _own(probe_backend)
        broker_before = _own(broker) if broker else None
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        watch = _Watch(proc.pid, probe, root_label)
        figures = Figures(name, expected, 0.0)
        try:
            _follow(proc, watch, probe, expected, started, figures, publishes=root_label == "supervisor")
        except BaseException:
            stop(proc)  # the bench failed (a service went away): leave no consumer running behind it
            raise
        # The command has exited and is not reaped yet: its stat holds its final times and its joined workers'.
        final = read_stat(proc.pid)
        assert final is not None
        figures.client_cpu = final.with_reaped + watch.orphans_cpu()
        if root_label == "supervisor":
            figures.workers_cpu = final.reaped  # the supervisor reaps its workers and their zygote, nothing else
        proc.wait()
        if figures.seconds == 0.0:
            log.seek(0)
            tail = log.read()[-3000:]
            raise RuntimeError(f"{name} exited with {proc.returncode} before storing every order:\n{tail}")
        figures.postgres_cpu = tree_cpu(postmaster) - pg_before - (_own(probe_backend) - probe_before)
        figures.postgres_db_cpu = sum(watch.backends.values())
        if broker is not None and broker_before is not None:
            figures.broker_cpu = _own(broker) - broker_before
        figures.peak_rss_kib = {watch.labels[k]: kib for k, kib in watch.peak_kib.items()}
    return figures


def _follow(
    proc: subprocess.Popen[bytes],
    watch: _Watch,
    probe: psycopg.Connection[Any],
    expected: int,
    started: float,
    figures: Figures,
    *,
    publishes: bool = False,
) -> None:
    """Sample until the command exits; note when the first and the last order were stored (and, for a command that
    ``publishes`` the events, when the outbox was empty again). A command that ends with its work (psql) is done
    when it exits, which a thread waiting for it notes at once."""
    exited = threading.Event()
    exit_time = 0.0

    def wait_for_exit() -> None:
        nonlocal exit_time
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # not reaped: its /proc entry stays readable
        exit_time = time.perf_counter()
        exited.set()

    threading.Thread(target=wait_for_exit, name="exit-watch", daemon=True).start()
    first_seen = _until_first_stored(proc.pid, probe, started, figures, exited, watch.label)
    first_count = _count(probe)  # read after the CPU: the window's orders, never too many
    tick, stored, near_end = 0, 0, False
    while True:
        done = exited.is_set()
        cpu = 0.0 if done else watch.sample()
        # count(*) reads the whole growing table: every other sample, as long as the bench ran it before; every
        # step of 20 ms once the rate so far says the last order is due within two samples (so the end, too, is
        # read to within a step).
        if figures.seconds == 0.0 and (tick % 2 == 0 or done or near_end):
            stored = _count(probe)
            now = time.perf_counter()
            if stored and not first_seen:
                first_seen, figures.startup_cpu = True, cpu
                figures.first_seconds = now - started
            if stored >= expected:
                figures.seconds = (exit_time if done else now) - started
            near_end = first_seen and _due_within(stored, expected, now - started - figures.first_seconds)
        if done:
            return
        _end_steady(watch, probe, figures, first_seen, expected - first_count, publishes)
        tick += 1
        exited.wait(STARTUP_SAMPLE_SECONDS if near_end else SAMPLE_SECONDS)


def _end_steady(
    watch: _Watch, probe: psycopg.Connection[Any], figures: Figures, first_seen: bool, orders: int, publishes: bool
) -> None:
    """Once every order is stored, the steady window ends when (for a command that publishes) the outbox is empty
    too. The CPU is read after the probe: at most one step of work too many, never too few."""
    if not first_seen or not figures.seconds or figures.steady_cpu is not None:
        return
    if not publishes or _outbox_empty(probe):
        figures.steady_cpu = watch.sample() - figures.startup_cpu
        figures.steady_orders = orders


def _count(probe: psycopg.Connection[Any]) -> int:
    row = probe.execute("SELECT count(*) FROM orders").fetchone()
    return int(row[0]) if row else 0


def _outbox_empty(probe: psycopg.Connection[Any]) -> bool:
    row = probe.execute("SELECT NOT EXISTS (SELECT FROM outbox)").fetchone()
    return bool(row and row[0])


def _due_within(stored: int, expected: int, since_first: float) -> bool:
    """Whether, at the rate since the first stored order, the last is due within two samples."""
    return since_first > 0 and stored + stored / since_first * 2 * SAMPLE_SECONDS >= expected


def _until_first_stored(
    root: int,
    probe: psycopg.Connection[Any],
    started: float,
    figures: Figures,
    exited: threading.Event,
    label: Callable[[Stat], str],
) -> bool:
    """Start-up: the tree's CPU once a probe that costs the same on any table (EXISTS) first finds an order,
    looked at every 20 ms, in all and per process (the supervisor's, each worker's). Read after the probe, so it
    counts at most one step of work too many, never too few."""
    while not exited.is_set():
        row = probe.execute("SELECT EXISTS (SELECT FROM orders)").fetchone()
        try:
            tree = tree_stats(root)
        except ProcessLookupError:
            return False
        if row is not None and row[0]:
            by_process = figures.startup_cpu_by_process
            for stat in tree:  # summed per label: two processes may share one (each counted once, as in the total)
                by_process[label(stat)] = by_process.get(label(stat), 0.0) + stat.with_reaped
            figures.startup_cpu = sum(by_process.values())
            figures.first_seconds = time.perf_counter() - started
            return True
        exited.wait(STARTUP_SAMPLE_SECONDS)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 15 s."""
    proc.terminate()  # consume forwards it to its workers and lets them finish
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _backend_pid(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _own(pid: int) -> float:
    stat = read_stat(pid)
    if stat is None:
        raise ProcessLookupError(pid)
    return stat.own
