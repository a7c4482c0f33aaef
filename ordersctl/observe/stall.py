"""Has the pipeline stopped while orders wait: lag with no member in the group, or lag whose committed offsets
do not move for ``stall_seconds``.

Kafka gives an observer no time of a group's last commit (OffsetFetch answers offsets only), and a record's
timestamp says when it was produced, not when the group got past it. So "not moved for S seconds" is observed:
the committed offsets are read again, twice a second, until every lagging partition has moved or one has stayed
put for S seconds. A working pipeline commits within a batch, so a healthy answer costs about that; only a
stalled pipeline costs the S seconds, and it is never called healthy before they are over. ``status --watch``
keeps one ``CommitWatch`` over its refreshes, so it judges from what it has seen without waiting again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ordersctl.observe.status import OrdersProgress, PartitionLag

DEFAULT_STALL_SECONDS = 10.0
POLL_SECONDS = 0.5
Verdict = Literal["moving", "stalled", "watching"]


@dataclass
class CommitWatch:
    """Per partition: the committed offset last read, since when it has held it, and whether it was seen to
    change (a first sighting is not a change)."""

    clock: Callable[[], float] = time.monotonic
    _seen: dict[int, tuple[int | None, float, bool]] = field(default_factory=dict)

    def observe(self, partitions: Iterable[PartitionLag]) -> None:
        now = self.clock()
        for p in partitions:
            before = self._seen.get(p.partition)
            if before is None:
                self._seen[p.partition] = (p.committed, now, False)
            elif before[0] != p.committed:
                self._seen[p.partition] = (p.committed, now, True)

    def unmoved_seconds(self, partition: int) -> float:
        return self.clock() - self._seen[partition][1]

    def verdict(self, partition: int, stall_seconds: float) -> Verdict:
        """stalled: held its offset for ``stall_seconds``; moving: changed within them; watching: not yet known."""
        if self.unmoved_seconds(partition) >= stall_seconds:
            return "stalled"
        return "moving" if self._seen[partition][2] else "watching"


@dataclass(frozen=True)
class StalledPartition:
    """A partition with lag whose committed offset has not moved for the stall time."""

    partition: int
    committed: int | None
    lag: int
    unmoved_seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "committed": self.committed, "lag": self.lag,
                "unmoved_seconds": round(self.unmoved_seconds, 1)}  # fmt: skip


@dataclass(frozen=True)
class StallCheck:
    """The verdict of the pipeline rules. ``stall_seconds`` None: offsets were not watched (off)."""

    stall_seconds: float | None
    no_members: bool = False  # lag > 0 and nobody in the group to read it
    stalled: tuple[StalledPartition, ...] = ()
    watched_seconds: float = 0.0  # how long this read waited for the offsets to move

    @property
    def unhealthy(self) -> bool:
        return self.no_members or bool(self.stalled)

    def problems(self, orders: OrdersProgress) -> list[str]:
        found = []
        if self.no_members:
            found.append(f"group {orders.group.group_id} has no members and lag {orders.total_lag}: nothing consumes")
        if self.stalled:
            parts = ", ".join(str(p.partition) for p in self.stalled)
            lag = sum(p.lag for p in self.stalled)
            least = min(p.unmoved_seconds for p in self.stalled)
            found.append(f"stalled: partition(s) {parts} with lag {lag} have not moved their committed offsets for"
                         f" {least:.0f} s or more (--stall-seconds {self.stall_seconds:g})")  # fmt: skip
        return found

    def as_json(self) -> dict[str, Any]:
        return {"stall_seconds": self.stall_seconds, "no_members": self.no_members,
                "stalled": [p.as_json() for p in self.stalled],
                "watched_seconds": round(self.watched_seconds, 1)}  # fmt: skip


def check_stall(
    progress: OrdersProgress,
    reread: Callable[[], OrdersProgress],
    stall_seconds: float | None,
    watch: CommitWatch,
    *,
    note: Callable[[str], None] = lambda _: None,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[OrdersProgress, StallCheck]:
    """The verdict, and the progress last read (``reread()`` reads it again while the offsets are watched)."""
    started = watch.clock()
    watched = False
    while True:
        if progress.total_lag == 0:
            return progress, StallCheck(stall_seconds)
        if not progress.group.members:
            return progress, StallCheck(stall_seconds, no_members=True, watched_seconds=watch.clock() - started)
        if stall_seconds is None:
            return progress, StallCheck(None)
        watch.observe(progress.partitions)
        lagging = [p for p in progress.partitions if p.lag > 0]
        verdicts = {p.partition: watch.verdict(p.partition, stall_seconds) for p in lagging}
        waiting = [p for p, v in verdicts.items() if v == "watching"]
        if not waiting:
            break
        left = min(stall_seconds - watch.unmoved_seconds(p) for p in waiting)
        if not watched:
            watched = True
            note(f"waiting up to {left:.0f} s for the committed offsets of partition(s)"
                 f" {', '.join(map(str, waiting))} to move (--stall-seconds {stall_seconds:g})")  # fmt: skip
        sleep(max(0.0, min(POLL_SECONDS, left)))
        progress = reread()
    stalled = tuple(
        StalledPartition(p.partition, p.committed, p.lag, watch.unmoved_seconds(p.partition))
        for p in lagging
        if verdicts[p.partition] == "stalled"
    )
    return progress, StallCheck(stall_seconds, stalled=stalled, watched_seconds=watch.clock() - started)
