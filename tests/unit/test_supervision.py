"""The shared supervision loop with real forked processes: which exits are restarted, and the stop sequence
(SIGTERM, grace, SIGKILL) that ``consume --workers`` and ``serve --processes`` both rely on."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.context import ForkProcess

from ordersctl.supervision import ProcessSupervisor, RestartBackoff

FORK = mp.get_context("fork")


def _child(body: Callable[[], None]) -> None:
    # A forked child inherits the supervisor's SIGTERM handler; a real child body replaces it first thing too.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    body()


def _exit(code: int) -> Callable[[], None]:
    return lambda: os._exit(code)


def _run_forever() -> None:
    while True:
        time.sleep(1)


def _ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a child that will not stop: only SIGKILL ends it
    _run_forever()


def _supervisor(
    bodies: dict[int, list[Callable[[], None]]], restart_clean_exit: bool = False, grace: float = 9.0
) -> tuple[ProcessSupervisor, list[int]]:
    """Slot ``i``'s n-th incarnation runs ``bodies[i][n]`` (the last one again once they run out)."""
    started: list[int] = []

    def make_child(slot: int) -> ForkProcess:
        incarnation = started.count(slot)
        started.append(slot)
        body = bodies[slot][min(incarnation, len(bodies[slot]) - 1)]
        return FORK.Process(target=_child, args=(body,))

    quick = RestartBackoff(step=0.05, cap=0.05)
    supervisor = ProcessSupervisor(
        make_child, len(bodies), grace=grace, restart_clean_exit=restart_clean_exit, backoff=quick, tick=0.02
    )
    return supervisor, started


def test_workers_a_clean_exit_is_finished_and_a_failure_is_restarted() -> None:
    supervisor, started = _supervisor({0: [_exit(1), _exit(0)], 1: [_exit(0)]})
    supervisor.run()  # returns by itself once every worker has exited 0
    assert sorted(started) == [0, 0, 1]
    assert (supervisor.restarts, supervisor.killed) == (1, 0)


def test_servers_are_restarted_even_after_a_clean_exit_and_killed_after_the_grace() -> None:
    supervisor, started = _supervisor(
        {0: [_exit(0), _run_forever], 1: [_ignore_sigterm]}, restart_clean_exit=True, grace=0.3
    )
    asked: list[float] = []

    def stop_once_restarted() -> None:
        deadline = time.monotonic() + 10
        while started.count(0) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        asked.append(time.monotonic())
        supervisor.stop()

    threading.Thread(target=stop_once_restarted, daemon=True).start()
    supervisor.run()  # in the main thread: it installs signal handlers
    assert sorted(started) == [0, 0, 1], "the server that exited 0 was started again, once"
    assert (supervisor.restarts, supervisor.killed) == (1, 1), "only the one that ignored SIGTERM was killed"
    assert 0.3 <= time.monotonic() - asked[0] < 5, "killed after the grace, not before"
