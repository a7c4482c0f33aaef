"""``consume --workers N``: N worker processes in one consumer group, supervised.

Workers are started with the "spawn" method, so each builds its own clients from scratch (nothing is
inherited across a fork). A worker that dies is restarted; SIGINT/SIGTERM is forwarded and the workers get
up to ``grace`` seconds to finish their batch, commit and leave the group.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.stats import WorkerStats

log = logging.getLogger(__name__)
# How long a finished worker waits for its Kafka clients to flush and close before it exits regardless.
TEARDOWN_SECONDS = 15.0


def worker_main(config_file: Path | None, overrides: dict[str, Any], options: WorkerOptions, reports: Any) -> None:
    """Body of a worker process. It always ends with ``os._exit``: once its batches are committed nothing in
    it needs finalizing, and a librdkafka handle that blocks in its destructor (seen after a broker restart,
    confluentinc/librdkafka#4674) must not keep a finished worker alive."""
    from ordersctl.config import load_settings
    from ordersctl.logs import setup_logging
    from ordersctl.pipeline.interpreter import tune_interpreter
    from ordersctl.pipeline.worker import ConsumeWorker
    from ordersctl.runtime import Runtime

    code = 1
    try:
        settings = load_settings(config_file, overrides)
        setup_logging(settings.log.level, settings.log.format)
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        # `kill -USR1 <worker pid>` writes every thread's stack to the log (stderr): what a stuck worker waits on.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        runtime = Runtime(settings)
        try:
            worker = ConsumeWorker(
                runtime, options, stop, report=lambda s: reports.put(((options.worker_id, os.getpid()), s))
            )
            tune_interpreter()
            worker.run()
            code = 0
        finally:
            if not runtime.close(timeout=TEARDOWN_SECONDS):
                log.warning(
                    "Kafka clients did not close in time; exiting without them", extra={"seconds": TEARDOWN_SECONDS}
                )
    except BaseException:
        traceback.print_exc()  # as multiprocessing would: the supervisor restarts the worker
    finally:
        logging.shutdown()
        reports.close()
        reports.join_thread()  # the last progress report reaches the supervisor
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


@dataclass
class RestartBackoff:
    """When to restart a worker that died: later after each death in a row (a crash loop must not spin), from
    scratch once it had run healthy for ``healthy_after`` seconds. Per worker, and a time to wait for rather than
    a sleep, so that the loop watching every other worker never stops for it."""

    step: float = 0.5
    cap: float = 5.0
    healthy_after: float = 30.0
    _deaths_in_a_row: dict[int, int] = field(default_factory=dict)
    _started: dict[int, float] = field(default_factory=dict)

    def started(self, worker: int, now: float) -> None:
        self._started[worker] = now

    def restart_at(self, worker: int, now: float) -> float:
        """The worker died at ``now``: the time to start it again."""
        if now - self._started.get(worker, now) >= self.healthy_after:
            self._deaths_in_a_row[worker] = 0
        deaths = self._deaths_in_a_row.get(worker, 0) + 1
        self._deaths_in_a_row[worker] = deaths
        return now + min(self.cap, self.step * deaths)


@dataclass
class Supervisor:
    config_file: Path | None
    overrides: dict[str, Any]
    workers: int
    options: WorkerOptions
    grace: float = 9.0
    progress: Callable[[WorkerStats], None] | None = None
    progress_every: float = 5.0
    restarts: int = 0
    _stopping: bool = False
    killed: int = 0
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    mp_context: Any = None  # multiprocessing's "spawn" context unless given (tests)
    _latest: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    _current: dict[int, int] = field(default_factory=dict)

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        self._stopping = True

    def _spawn(self, ctx: Any, worker_id: int, reports: Any) -> Any:
        opts = WorkerOptions(
            worker_id=worker_id,
            batch_size=self.options.batch_size,
            stop_when_idle=self.options.stop_when_idle,
            metrics_port=self.options.metrics_port,
            report_every=self.options.report_every,
        )
        proc = ctx.Process(
            target=worker_main,
            args=(self.config_file, self.overrides, opts, reports),
            name=f"ordersctl-worker-{worker_id}",
        )
        proc.start()
        self.backoff.started(worker_id, time.monotonic())
        log.info("worker started", extra={"worker": worker_id, "pid": proc.pid})
        return proc

    def _drain(self, reports: Any, wait: float) -> None:
        try:
            while True:
                (worker_id, pid), snapshot = reports.get(timeout=wait)
                self._latest[(worker_id, pid)] = snapshot
                self._current[worker_id] = pid
                wait = 0
        except queue.Empty:
            pass

    def totals(self) -> WorkerStats:
        """Counts summed over every incarnation of every worker; lag from each worker's latest one."""
        total = WorkerStats.total(list(self._latest.values()))
        total.lag = sum(self._latest[(w, pid)]["lag"] for w, pid in self._current.items())
        return total

    def run(self) -> WorkerStats:
        ctx = self.mp_context or mp.get_context("spawn")
        reports = ctx.Queue()
        previous = {s: signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)}
        procs = {i: self._spawn(ctx, i, reports) for i in range(self.workers)}
        finished: set[int] = set()
        restart_at: dict[int, float] = {}  # dead workers waiting for their restart time
        deadline: float | None = None
        last_progress = time.monotonic()
        try:
            while len(finished) < len(procs):
                self._drain(reports, 0.2)
                if self._stopping and deadline is None:
                    deadline = time.monotonic() + self.grace
                    for i, p in procs.items():
                        if i not in finished and p.is_alive():
                            p.terminate()  # SIGTERM: finish the batch, commit, leave the group
                for i, p in procs.items():
                    if i in finished or i in restart_at or p.is_alive():
                        continue
                    if p.exitcode == 0 or self._stopping:
                        finished.add(i)
                        continue
                    now = time.monotonic()
                    restart_at[i] = self.backoff.restart_at(i, now)
                    delay = round(restart_at[i] - now, 1)
                    log.error("worker died, restarting", extra={"worker": i, "exitcode": p.exitcode, "in_s": delay})
                for i, when in list(restart_at.items()):
                    if self._stopping:
                        finished.add(i)
                        del restart_at[i]
                    elif time.monotonic() >= when:
                        del restart_at[i]
                        self.restarts += 1
                        procs[i] = self._spawn(ctx, i, reports)
                if deadline is not None and time.monotonic() > deadline:
                    for i, p in procs.items():
                        if p.is_alive():
                            log.error("worker did not stop in time, killing", extra={"worker": i})
                            p.kill()
                            self.killed += 1
                    deadline = time.monotonic() + 5
                if self.progress and time.monotonic() - last_progress >= self.progress_every:
                    self.progress(self.totals())
                    last_progress = time.monotonic()
            for p in procs.values():
                p.join(timeout=2)
            self._drain(reports, 0.1)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return self.totals()
