"""Supervising N child processes: ``consume --workers N`` and ``serve --processes N`` both run on this.

A child that dies is started again after a per-child delay (longer after each death in a row, from scratch
after a healthy run) that the loop waits for without sleeping, so the other children stay watched meanwhile.
SIGTERM and SIGINT stop the lot: each child gets SIGTERM and ``grace`` seconds, then SIGKILL. So does a failure
(``fail``): a child in a crash loop (``crash_loop``), or one that exited with ``fatal_exit`` (it met an error
that cannot heal); ``failure`` then says why, and the caller exits non-zero with it.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from ordersctl.crash_loop import CrashLoopLimit

log = logging.getLogger(__name__)
# Between two kills of a child that outlived its grace (SIGKILL is not refused, but reaping can lag).
KILL_AGAIN_SECONDS = 5.0


class Child(Protocol):
    """A child process as ``multiprocessing.Process`` handles one (any start method)."""

    @property
    def pid(self) -> int | None: ...

    @property
    def exitcode(self) -> int | None: ...

    def start(self) -> None: ...

    def is_alive(self) -> bool: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


@dataclass
class RestartBackoff:
    """When to restart a child that died: later after each death in a row (a crash loop must not spin), from
    scratch once it had run healthy for ``healthy_after`` seconds. Per child, and a time to wait for rather than
    a sleep, so that the loop watching every other child never stops for it."""

    step: float = 0.5
    cap: float = 5.0
    healthy_after: float = 30.0
    _deaths_in_a_row: dict[int, int] = field(default_factory=dict)
    _started: dict[int, float] = field(default_factory=dict)

    def started(self, slot: int, now: float) -> None:
        self._started[slot] = now

    def lived(self, slot: int, now: float) -> float:
        """How long the child in ``slot`` has been running (or ran, when it just died)."""
        return now - self._started.get(slot, now)

    def restart_at(self, slot: int, now: float) -> float:
        """The child died at ``now``: the time to start it again."""
        if self.lived(slot, now) >= self.healthy_after:
            self._deaths_in_a_row[slot] = 0
        deaths = self._deaths_in_a_row.get(slot, 0) + 1
        self._deaths_in_a_row[slot] = deaths
        return now + min(self.cap, self.step * deaths)


@dataclass
class ProcessSupervisor:
    """Runs ``size`` children built by ``make_child(slot)`` until each has finished; ``run`` returns then.

    A child finishes by exiting 0 (unless ``restart_clean_exit``: servers are meant to run until stopped) or by
    exiting at all once a stop was asked for; any other exit is a death, and the slot is started again.
    ``between(seconds)`` is what the loop does between two looks at the children: sleep, or useful work that
    takes about that long (consume drains its workers' progress reports).

    A forked child inherits this process's handler for SIGTERM and SIGINT: its body sets its own first thing."""

    make_child: Callable[[int], Child]
    size: int
    grace: float = 9.0
    restart_clean_exit: bool = False
    role: str = "worker"
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    crash_loop: CrashLoopLimit | None = None  # None: restart for ever
    fatal_exit: int | None = None  # a child's exit code for "cannot heal": no restart, everything stops
    tick: float = 0.2
    restarts: int = 0
    killed: int = 0
    died: int = (
        0  # children that ended other than cleanly (exit code not 0 nor fatal_exit), during the run or at its stop
    )
    failure: str | None = None  # why the children were stopped, when it was not asked for
    _stopping: bool = field(default=False, init=False)
    _children: dict[int, Child] = field(default_factory=dict, init=False)
    _finished: set[int] = field(default_factory=set, init=False)
    # Dead children waiting for their restart time.
    _restart_at: dict[int, float] = field(default_factory=dict, init=False)
    _kill_at: float | None = field(default=None, init=False)

    def stop(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Ask every child to stop (safe from a signal handler or another thread: the loop does the rest)."""
        self._stopping = True

    def fail(self, reason: str) -> None:
        """Stop every child because of ``reason`` (the first one given is kept)."""
        if self.failure is None:
            self.failure = reason
            log.error("stopping: %s", reason, extra={"role": self.role})
        self.stop()

    def pids(self) -> dict[int, int]:
        """The pid of each child alive now, by slot."""
        return {slot: c.pid for slot, c in self._children.items() if c.pid is not None and c.is_alive()}

    def run(self, between: Callable[[float], None] = time.sleep) -> None:
        previous = {s: signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in range(self.size):
                self._start(slot)
            while len(self._finished) < len(self._children):
                between(self.tick)
                self._look()
            for child in self._children.values():
                child.join(timeout=2)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _look(self) -> None:
        if self._stopping and self._kill_at is None:
            self._terminate_all()
        self._reap()
        self._restart_due()
        if self._kill_at is not None and time.monotonic() > self._kill_at:
            self._kill_all()

    def _start(self, slot: int) -> None:
        child = self.make_child(slot)
        child.start()
        self._children[slot] = child
        self.backoff.started(slot, time.monotonic())
        log.info("%s started", self.role, extra={"child": slot, "child_pid": child.pid})

    def _terminate_all(self) -> None:
        self._kill_at = time.monotonic() + self.grace
        for slot, child in self._children.items():
            if slot not in self._finished and child.is_alive():
                child.terminate()  # SIGTERM: finish what it is doing and exit

    def _reap(self) -> None:
        for slot, child in self._children.items():
            if slot in self._finished or slot in self._restart_at or child.is_alive():
                continue
            if child.exitcode not in (0, self.fatal_exit):
                self.died += 1  # a child that exited with fatal_exit ended on purpose (its counts reported)
            log.debug("%s exited", self.role, extra={"child": slot, "child_pid": child.pid, "exitcode": child.exitcode})
            if self._stopping or (child.exitcode == 0 and not self.restart_clean_exit):
                self._finished.add(slot)
                continue
            now = time.monotonic()
            given_up = self._give_up(slot, child, now)
            if given_up is not None:
                self._finished.add(slot)
                self.fail(f"{self.role} {slot} {given_up}")
                continue
            self._restart_at[slot] = self.backoff.restart_at(slot, now)
            delay = round(self._restart_at[slot] - now, 1)
            extra = {"child": slot, "child_pid": child.pid, "exitcode": child.exitcode, "in_s": delay}
            log.error("%s died, restarting", self.role, extra=extra)

    def _give_up(self, slot: int, child: Child, now: float) -> str | None:
        if self.fatal_exit is not None and child.exitcode == self.fatal_exit:
            return "stopped on an error that cannot heal"
        if self.crash_loop is not None:
            return self.crash_loop.died(slot, now, self.backoff.lived(slot, now))
        return None

    def _restart_due(self) -> None:
        for slot, when in list(self._restart_at.items()):
            if self._stopping:
                self._finished.add(slot)
                del self._restart_at[slot]
            elif time.monotonic() >= when:
                del self._restart_at[slot]
                self.restarts += 1
                self._start(slot)

    def _kill_all(self) -> None:
        for slot, child in self._children.items():
            if child.is_alive():
                log.error("%s did not stop in time, killing", self.role, extra={"child": slot})
                child.kill()
                self.killed += 1
        self._kill_at = time.monotonic() + KILL_AGAIN_SECONDS
