"""The pipeline rules of ``status``: lag with nobody consuming, lag whose committed offsets do not move.
A fake clock that the fake sleep moves: no service, no waiting."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from ordersctl.adapters.kafka_observer import GroupInfo, GroupMember
from ordersctl.observe.services import ServiceCheck
from ordersctl.observe.stall import CommitWatch, check_stall
from ordersctl.observe.status import OrdersProgress, PipelineStatus, Thresholds, partition_lag

MEMBER = GroupMember("rdkafka", "/10.0.0.5", (0, 1))
UP = (ServiceCheck("PostgreSQL", "pg", True, 0.4), ServiceCheck("Redis", "r", True, 0.1),
      ServiceCheck("Kafka", "k", True, 1.2))  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _progress(committed: tuple[int | None, int | None], ends: tuple[int, int], members: bool = True) -> OrdersProgress:
    group = GroupInfo("ordersctl", "stable" if members else "empty", (MEMBER,) if members else ())
    parts = tuple(partition_lag(p, c, 0, e) for p, (c, e) in enumerate(zip(committed, ends, strict=True)))
    return OrdersProgress("orders", group, parts)


def _reads(*progress: OrdersProgress) -> Iterator[OrdersProgress]:
    """Each re-read returns the next; the last one for ever after."""
    yield from progress
    while True:
        yield progress[-1]


def test_no_lag_is_judged_at_once_without_waiting() -> None:
    clock = Clock()
    progress, check = check_stall(_progress((10, 5), (10, 5), members=False), _fail, 10, CommitWatch(clock),
                                  sleep=clock.sleep)  # fmt: skip
    assert not check.unhealthy and clock.slept == [] and progress.total_lag == 0


def _fail() -> OrdersProgress:
    raise AssertionError("read again, but nothing needed watching")


def test_lag_with_no_member_is_unhealthy_at_once() -> None:
    clock = Clock()
    first = _progress((None, 2), (3000, 2), members=False)
    _, check = check_stall(first, _fail, 10, CommitWatch(clock), sleep=clock.sleep)
    assert check.no_members and check.unhealthy and clock.slept == []
    status = PipelineStatus(datetime.now(UTC), Thresholds(), UP, first, None, None, {}, None, check)
    assert status.exit_code() == 1
    assert status.problems() == ["group ordersctl has no members and lag 3000: nothing consumes"]
    assert status.as_json()["stall"] == {"stall_seconds": 10, "no_members": True, "stalled": [],
                                         "watched_seconds": 0.0}  # fmt: skip
    assert status.as_json()["healthy"] is False


def test_offsets_that_move_answer_as_soon_as_every_lagging_partition_moved() -> None:
    clock = Clock()
    reads = _reads(_progress((10, 50), (100, 80)), _progress((20, 50), (100, 80)), _progress((30, 60), (100, 80)))
    _, check = check_stall(next(reads), lambda: next(reads), 10, CommitWatch(clock), sleep=clock.sleep)
    assert not check.unhealthy
    assert clock.slept == [0.5, 0.5], "two reads: partition 0 moved at the first, partition 1 at the second"


def test_offsets_that_do_not_move_for_stall_seconds_are_a_stall() -> None:
    clock = Clock()
    # Partition 0 moves, partition 1 stays at 50 with lag 30 however long we look.
    reads = _reads(_progress((10, 50), (100, 80)), _progress((20, 50), (100, 80)), _progress((30, 50), (100, 80)))
    progress, check = check_stall(next(reads), lambda: next(reads), 3, CommitWatch(clock), sleep=clock.sleep)
    assert check.unhealthy and not check.no_members
    assert [(p.partition, p.committed, p.lag) for p in check.stalled] == [(1, 50, 30)]
    assert check.stalled[0].unmoved_seconds >= 3 and check.watched_seconds == sum(clock.slept) >= 3
    status = PipelineStatus(datetime.now(UTC), Thresholds(stall_seconds=3), UP, progress, None, None, {}, None, check)
    assert status.exit_code() == 1
    assert status.problems() == ["stalled: partition(s) 1 with lag 30 have not moved their committed offsets for 3 s"
                                 " or more (--stall-seconds 3)"]  # fmt: skip
    assert status.as_json()["stall"]["stalled"] == [{"partition": 1, "committed": 50, "lag": 30,
                                                     "unmoved_seconds": 3.0}]  # fmt: skip


def test_a_stall_beats_lag_above_max_lag() -> None:
    clock = Clock()
    first = _progress((10, 50), (100, 80))
    _, check = check_stall(first, lambda: first, 2, CommitWatch(clock), sleep=clock.sleep)
    status = PipelineStatus(datetime.now(UTC), Thresholds(max_lag=1), UP, first, None, None, {}, None, check)
    assert status.exit_code() == 1 and len(status.problems()) == 2


def test_the_watch_remembers_refreshes_a_stall_seen_before_is_not_waited_for_again() -> None:
    clock = Clock()
    watch = CommitWatch(clock)
    stuck = _progress((10, 50), (100, 50))
    _, check = check_stall(stuck, lambda: stuck, 10, watch, sleep=clock.sleep)
    assert check.unhealthy and sum(clock.slept) >= 10
    clock.slept.clear()
    clock.now += 5  # the next refresh of --watch
    _, again = check_stall(stuck, _fail, 10, watch, sleep=clock.sleep)
    assert again.unhealthy and clock.slept == [] and again.stalled[0].unmoved_seconds >= 15


def test_members_that_leave_while_watched_are_no_members() -> None:
    clock = Clock()
    reads = _reads(_progress((10, 50), (100, 80)), _progress((10, 50), (100, 80), members=False))
    _, check = check_stall(next(reads), lambda: next(reads), 10, CommitWatch(clock), sleep=clock.sleep)
    assert check.no_members and clock.slept == [0.5]


def test_stall_seconds_none_leaves_moving_unjudged_but_still_sees_no_members() -> None:
    clock = Clock()
    first = _progress((10, 50), (100, 80))
    _, check = check_stall(first, _fail, None, CommitWatch(clock), sleep=clock.sleep)
    assert not check.unhealthy and check.stall_seconds is None and clock.slept == []
    _, empty = check_stall(_progress((10, 50), (100, 80), members=False), _fail, None, CommitWatch(clock))
    assert empty.no_members
