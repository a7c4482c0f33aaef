"""``consume --workers N``: N worker processes in one consumer group, supervised.

Workers are forked from a zygote (ordersctl/zygote.py: forked before the supervisor has a thread or a socket, with
a worker's modules imported), or spawned where it cannot be had; either way each builds its own clients from
scratch. A worker that dies is restarted; SIGINT/SIGTERM is forwarded and the workers get up to ``grace`` seconds
to finish their batch, commit and leave the group.

Consume stops, every worker with it, when a worker meets an error that cannot heal (a ``FatalError``: it
reports it and exits with ``FATAL_EXIT``, and is not restarted) or is in a crash loop (``crash_loop``);
``error()`` then says why. The workers' reports also feed the health endpoints (pipeline/health.py).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ordersctl.crash_loop import CrashLoopLimit
from ordersctl.errors import FATAL_ERRORS, CrashLoop, FatalError, OrdersError
from ordersctl.pipeline.health import HealthBoard, HealthServer
from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.stats import WorkerStats
from ordersctl.pipeline.worker_process import FATAL_EXIT, FATAL_REPORT, WORKER_MODULES, fatal_report, worker_main
from ordersctl.process_name import worker_name
from ordersctl.supervision import Child, ProcessSupervisor, RestartBackoff
from ordersctl.zygote import ForkedChild, Zygote, ZygoteUnavailable

__all__ = ["FATAL_EXIT", "Supervisor", "fatal_from_report", "fatal_report"]

log = logging.getLogger(__name__)


def fatal_from_report(report: dict[str, Any]) -> FatalError:
    kind = FATAL_ERRORS.get(str(report[FATAL_REPORT]), FatalError)
    return kind(str(report["service"]), str(report["cause"]))


@dataclass
class Supervisor:
    """``consume --workers N``: the worker processes on the shared supervision loop, plus their progress reports
    (summed in ``totals``, passed to ``progress`` every ``progress_every`` seconds)."""

    config_file: Path | None
    overrides: dict[str, Any]
    workers: int
    options: WorkerOptions
    grace: float = 9.0
    progress: Callable[[WorkerStats], None] | None = None
    progress_every: float = 5.0
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    crash_loop: CrashLoopLimit | None = field(default_factory=CrashLoopLimit)
    stall_seconds: float = 60.0
    health_address: tuple[str, int] | None = None  # where /livez and /readyz listen; None: nowhere
    mp_context: Any = None  # given (tests): workers are this context's Processes; else the zygote's, or spawned
    tick: float = 0.2  # seconds between two looks at the workers (tests look more often)
    _latest: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    _current: dict[int, int] = field(default_factory=dict)
    _last_progress: float = 0.0
    fatal: FatalError | None = None  # the error that cannot heal a worker reported

    def __post_init__(self) -> None:
        self._ctx = self.mp_context or mp.get_context("spawn")
        self._reports: Any = None  # the workers' queue of progress reports, made by run()
        self._group = ProcessSupervisor(
            self._make_worker, self.workers, grace=self.grace, backoff=self.backoff, crash_loop=self.crash_loop,
            fatal_exit=FATAL_EXIT, tick=self.tick,
        )  # fmt: skip
        self.health = HealthBoard(self.workers, self.stall_seconds)
        self._alive: dict[int, int] = {}  # pid by worker id, as the loop last saw them (read by the health thread)
        self._zygote: Zygote | None = None

    @property
    def restarts(self) -> int:
        return self._group.restarts

    @property
    def killed(self) -> int:
        return self._group.killed

    @property
    def died(self) -> int:
        """Workers that did not end cleanly: what they counted since their last report is missing."""
        return self._group.died

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self._group.stop(signum, frame)

    def error(self) -> OrdersError | None:
        """Why consume stopped on its own, if it did: a worker's error that cannot heal, or a crash loop."""
        if self.fatal is not None:
            return self.fatal
        if self._group.failure is not None:
            return CrashLoop(f"consume stopped: {self._group.failure}")
        return None

    def ready(self) -> tuple[bool, dict[str, Any]]:
        return self.health.ready(self._alive)

    def live(self) -> tuple[bool, dict[str, Any]]:
        return self.health.live(self._alive)

    def _make_worker(self, worker_id: int) -> Child:
        opts = WorkerOptions(
            worker_id=worker_id,
            batch_size=self.options.batch_size,
            stop_when_idle=self.options.stop_when_idle,
            metrics_port=self.options.metrics_port,
            report_every=self.options.report_every,
        )
        name = worker_name(worker_id)
        if self._zygote is not None:
            return ForkedChild(self._zygote, name, opts, instead=lambda: self._spawned(opts, name))
        return self._spawned(opts, name)

    def _spawned(self, opts: WorkerOptions, name: str) -> Child:
        if self._zygote is not None and not self._zygote.alive:
            log.warning("the worker zygote is gone: spawning workers from now on", extra={"worker": opts.worker_id})
            self._zygote.close()
            self._zygote = None
        return self._ctx.Process(
            target=worker_main, args=(self.config_file, self.overrides, opts, self._reports), name=name
        )

    def _forked_worker(self, opts: WorkerOptions) -> None:
        """A forked worker's body (in the zygote's child, with the report queue it inherited)."""
        worker_main(self.config_file, self.overrides, opts, self._reports)

    def _start_zygote(self) -> None:
        if self.mp_context is not None or not Zygote.available():
            return
        zygote = Zygote(self._forked_worker, WORKER_MODULES)
        try:
            zygote.start()
        except ZygoteUnavailable as exc:
            log.info("workers are spawned: no zygote", extra={"error": str(exc)})
            return
        self._zygote = zygote

    def _drain(self, wait: float) -> None:
        try:
            while True:
                (worker_id, pid), snapshot = self._reports.get(timeout=wait)
                wait = 0
                if FATAL_REPORT in snapshot:
                    self._fatal(worker_id, fatal_from_report(snapshot))
                    continue
                self._latest[(worker_id, pid)] = snapshot
                self._current[worker_id] = pid
                self.health.reported(worker_id, pid, snapshot)
        except queue.Empty:
            pass

    def _fatal(self, worker_id: int, error: FatalError) -> None:
        if self.fatal is None:
            self.fatal = error
        self._group.fail(f"worker {worker_id}: {error}")

    def _between_looks(self, wait: float) -> None:
        self._drain(wait)
        self._alive = self._group.pids()
        if self.progress and time.monotonic() - self._last_progress >= self.progress_every:
            self.progress(self.totals())
            self._last_progress = time.monotonic()

    def totals(self) -> WorkerStats:
        """Counts summed over every incarnation of every worker; lag and what blocks each worker (``w0:store 12s``)
        from each one's latest report."""
        total = WorkerStats.total(list(self._latest.values()))
        latest = [(w, self._latest[(w, pid)]) for w, pid in sorted(self._current.items())]
        total.lag = sum(snapshot["lag"] for _w, snapshot in latest)
        total.blocked = ",".join(f"w{w}:{s['blocked']}" for w, s in latest if s.get("blocked"))
        return total

    def run(self) -> WorkerStats:
        self._reports = self._ctx.Queue()  # first: the zygote's workers inherit it
        self._start_zygote()  # before the health server's thread and socket exist
        try:
            server = self._health_server()
            self._last_progress = time.monotonic()
            try:
                self._group.run(between=self._between_looks)
                self._drain(0.1)
            finally:
                if server is not None:
                    server.close()
        finally:
            if self._zygote is not None:
                self._zygote.close()
        return self.totals()

    def _health_server(self) -> HealthServer | None:
        if self.health_address is None:
            return None
        host, port = self.health_address
        try:
            server = HealthServer(host, port, {"/livez": self.live, "/readyz": self.ready})
        except OSError as exc:
            raise OrdersError(f"cannot listen on {host}:{port} for health: {exc.strerror or exc}") from None
        server.start()
        return server
