"""The supervisor's restarts, with a stand-in for multiprocessing's context (same methods, no processes)."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

from ordersctl.crash_loop import CrashLoopLimit
from ordersctl.errors import AccessDenied, CrashLoop
from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.supervisor import FATAL_EXIT, Supervisor, fatal_report
from ordersctl.supervision import RestartBackoff


class FakeProcess:
    """Worker 0 dies at once with exit code 1 every time (a crash loop); the others run until ``done`` is set."""

    def __init__(self, done: threading.Event, args: tuple[Any, ...], **_: Any) -> None:
        self.worker_id = args[2].worker_id
        self.done = done
        self.pid = 1000 + self.worker_id
        self.exitcode: int | None = None

    def start(self) -> None:
        if self.worker_id == 0:
            self.exitcode = 1

    def is_alive(self) -> bool:
        if self.exitcode is None and self.done.is_set():
            self.exitcode = 0
        return self.exitcode is None

    def terminate(self) -> None:
        self.exitcode = 0

    kill = terminate

    def join(self, timeout: float | None = None) -> None:
        pass


class FakeContext:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.spawned: list[int] = []

    def Process(self, *, target: Any, args: tuple[Any, ...], name: str) -> FakeProcess:  # noqa: N802 (multiprocessing's name)
        self.spawned.append(args[2].worker_id)
        return FakeProcess(self.done, args)

    def Queue(self) -> queue.Queue[Any]:  # noqa: N802
        return queue.Queue()


def test_a_crash_looping_worker_never_holds_up_the_loop_watching_the_others() -> None:
    ctx = FakeContext()
    supervisor = Supervisor(
        None, {}, 2, WorkerOptions(), mp_context=ctx, backoff=RestartBackoff(step=0.25, cap=5.0), tick=0.02
    )
    asked: list[float] = []

    def stop_after_three_restarts() -> None:
        deadline = time.monotonic() + 10
        while ctx.spawned.count(0) < 4 and time.monotonic() < deadline:  # delays 0.25, 0.5, 0.75 s so far
            time.sleep(0.02)
        asked.append(time.monotonic())
        supervisor.stop()

    stopper = threading.Thread(target=stop_after_three_restarts, daemon=True)
    stopper.start()
    supervisor.run()  # in the main thread: it installs signal handlers
    assert ctx.spawned.count(0) >= 4 and supervisor.restarts >= 3
    assert time.monotonic() - asked[0] < 0.6, "the stop waited behind the next restart delay (1 s)"
    assert ctx.spawned.count(1) == 1, "the healthy worker was left alone"


def test_restart_delays_grow_per_worker_and_reset_after_a_healthy_run() -> None:
    backoff = RestartBackoff(step=0.5, cap=2.0, healthy_after=30)
    backoff.started(0, 0.0)
    delays = []
    for now in (1.0, 2.0, 3.0, 4.0, 5.0):
        delays.append(backoff.restart_at(0, now) - now)
        backoff.started(0, now)
    assert delays == [0.5, 1.0, 1.5, 2.0, 2.0]
    backoff.started(1, 0.0)
    assert backoff.restart_at(1, 6.0) == 6.5, "another worker's crashes do not lengthen this one's delay"
    backoff.started(0, 10.0)
    assert backoff.restart_at(0, 45.0) == 45.5, "after 35 s of healthy running the delay starts over"


def test_a_crash_loop_stops_consume_with_its_reason_instead_of_restarting_for_ever() -> None:
    ctx = FakeContext()
    supervisor = Supervisor(
        None, {}, 2, WorkerOptions(), mp_context=ctx, backoff=RestartBackoff(step=0.01, cap=0.01),
        crash_loop=CrashLoopLimit(restarts=3, window=60), tick=0.02,
    )  # fmt: skip
    supervisor.run()  # returns by itself: nobody asked it to stop
    assert ctx.spawned.count(0) == 4, "3 restarts, then it gave up"
    error = supervisor.error()
    assert isinstance(error, CrashLoop)
    assert "worker 0 crash loop: died 4 times within 60 s, each within 30 s of its start" in str(error)


class FailingProcess(FakeProcess):
    """Worker 0 meets an error that cannot heal: it reports it and exits with FATAL_EXIT, as worker_main does."""

    def __init__(self, done: threading.Event, args: tuple[Any, ...], **_: Any) -> None:
        super().__init__(done, args)
        self.reports = args[3]

    def start(self) -> None:
        if self.worker_id == 0:
            self.reports.put(((0, self.pid), fatal_report(AccessDenied("Kafka", "access denied at k:9092 (..)"))))
            self.exitcode = FATAL_EXIT


class FailingContext(FakeContext):
    def Process(self, *, target: Any, args: tuple[Any, ...], name: str) -> FakeProcess:  # noqa: N802
        self.spawned.append(args[2].worker_id)
        return FailingProcess(self.done, args)


def test_an_error_that_cannot_heal_stops_every_worker_and_is_never_restarted() -> None:
    ctx = FailingContext()
    supervisor = Supervisor(None, {}, 2, WorkerOptions(), mp_context=ctx)
    supervisor.run()
    assert ctx.spawned == [0, 1], "nothing restarted"
    error = supervisor.error()
    assert isinstance(error, AccessDenied)
    assert str(error) == "Kafka: access denied at k:9092 (..)"
