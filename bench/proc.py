"""CPU time and memory of processes, read from /proc (Linux): what the benchmarks report per order and request.

CPU is utime + stime of /proc/<pid>/stat (every thread of the process). A parent's cutime + cstime holds the
CPU of the children it has waited for, so a process tree's CPU over a window is exact without sampling at the
right moment: the root's own time, plus what it reaped, plus the live children's trees (``tree_cpu``). The
snapshot is retried until the root reaped nothing while it was taken, so a child that ends meanwhile is
neither lost nor counted twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/<pid>/stat the benchmarks use; times in seconds."""

    pid: int
    ppid: int
    state: str
    own: float  # utime + stime: the process itself, all threads
    reaped: float  # cutime + cstime: the children it has waited for
    started: int  # starttime in clock ticks since boot: with the pid, names one process (pids are reused)

    @property
    def key(self) -> tuple[int, int]:
        return self.pid, self.started

    @property
    def with_reaped(self) -> float:
        """Its own CPU and that of the children it has waited for: its whole tree, once the tree has ended."""
        return self.own + self.reaped


def read_stat(pid: int) -> Stat | None:
    """None when the process is gone (a zombie still answers: its times are final until it is reaped)."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; everything after its last ")" is fixed.
    f = text[text.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(v) for v in f[11:15])
    return Stat(pid, int(f[1]), f[0], (utime + stime) / TICKS, (cutime + cstime) / TICKS, int(f[19]))


def all_stats() -> list[Stat]:
    stats = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats.append(stat)
    return stats


def descendants(root: int, stats: list[Stat] | None = None) -> list[Stat]:
    """Every live descendant of ``root`` (this kernel has no /proc/<pid>/task/<tid>/children: a scan)."""
    by_parent: dict[int, list[Stat]] = {}
    for stat in stats if stats is not None else all_stats():
        by_parent.setdefault(stat.ppid, []).append(stat)
    found: list[Stat] = []
    todo = [root]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root`` and every descendant it has or had (the ones it reaped included); raises
    ProcessLookupError when ``root`` is gone."""
    # A descendant's own reaped children are in its ``reaped``: summed once per level.
    return sum(s.with_reaped for s in tree_stats(root))


def tree_stats(root: int) -> list[Stat]:
    """``root`` first, then every live descendant, read while ``root`` reaped none of them (so a child's CPU is
    in its own line or in ``root``'s ``reaped``, never in both or neither); raises ProcessLookupError when
    ``root`` is gone."""
    for _ in range(20):
        before = read_stat(root)
        if before is None:
            raise ProcessLookupError(root)
        tree = descendants(root)
        after = read_stat(root)
        if after is None:
            raise ProcessLookupError(root)
        if after.reaped == before.reaped:
            return [after, *tree]
    raise RuntimeError(f"process {root} keeps reaping children; no consistent snapshot")


def status_kib(pid: int, field: str) -> int | None:
    """A ``kB`` line of /proc/<pid>/status (VmRSS, VmHWM), or None when the process is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def comm(pid: int) -> str:
    """The process's name (what ps -o comm shows): a forked ordersctl worker sets its own."""
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def parent_of(pid: int) -> int:
    stat = read_stat(pid)
    if stat is None:
        raise ProcessLookupError(pid)
    return stat.ppid
