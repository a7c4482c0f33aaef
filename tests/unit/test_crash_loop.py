"""When a supervisor gives up on a child that keeps dying."""

from __future__ import annotations

from ordersctl.crash_loop import CrashLoopLimit


def test_more_deaths_than_restarts_within_the_window_is_a_crash_loop() -> None:
    limit = CrashLoopLimit(restarts=3, window=60)
    assert [limit.died(0, t) for t in (0, 10, 20)] == [None, None, None]
    reason = limit.died(0, 30)
    assert reason is not None and "4 times within 60 s, each within 30 s of its start" in reason


def test_deaths_older_than_the_window_are_forgotten_and_slots_are_counted_apart() -> None:
    limit = CrashLoopLimit(restarts=2, window=60)
    assert [limit.died(0, t) for t in (0, 50, 100, 150)] == [None, None, None, None]  # never 3 within 60 s
    assert [limit.died(1, t) for t in (100, 101)] == [None, None]
    assert limit.died(2, 102) is None


def test_zero_restarts_turns_the_limit_off() -> None:
    limit = CrashLoopLimit(restarts=0, window=60)
    assert all(limit.died(0, t) is None for t in range(100))


def test_a_death_after_a_healthy_run_is_restarted_without_counting() -> None:
    """Killed by an operator, the OOM killer or the chaos suite's worker-kill: not a crash loop."""
    limit = CrashLoopLimit(restarts=2, window=300, healthy_after=30)
    assert all(limit.died(0, t, lived=31) is None for t in range(0, 100, 10))
    assert [limit.died(0, t, lived=1) for t in (100, 101)] == [None, None]
    assert limit.died(0, 102, lived=1) is not None
