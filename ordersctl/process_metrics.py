"""What every ordersctl process exports beside its own metrics: ``ordersctl_build_info`` and the standard process
metrics of the Prometheus client libraries (``process_cpu_seconds_total``, ``process_resident_memory_bytes``,
``process_open_fds``, ...), which dashboards and alerts expect under those names.

A consume worker serves a registry of its own (its own port): there, the process metrics are its own. serve's
processes (``--processes N``) share one /metrics through prometheus_client's multiprocess mode, which collects
no process metrics: ``ServerProcesses`` reads those of every server process from /proc, one series per ``pid``.
"""

from __future__ import annotations

import functools
import os
import platform
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ordersctl import __version__

PROC = "/proc"


class BuildInfo(Collector):
    """``ordersctl_build_info{version, python_version} 1``: join it on ``instance`` to tell what runs where. A
    collector, not an ``Info`` metric, so that it works in multiprocess mode too."""

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "ordersctl_build_info",
            "The ordersctl version and the Python version running it (the value is always 1)",
            labels=["version", "python_version"],
        )
        family.add_metric([__version__, platform.python_version()], 1)
        return [family]


def process_registry() -> CollectorRegistry:
    """A registry for one process's metrics, holding its build info and its own process metrics."""
    # Each ``*_created`` series is one more series per counter and histogram in the text format, a timestamp
    # without a unit that Prometheus does not need for rate(); off before any metric is made.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    registry.register(BuildInfo())
    ProcessCollector(registry=registry)
    return registry


class ServerProcesses(Collector):
    """The process metrics of every process that serves one /metrics together: the children of this process's
    parent that run the same command line as this one (serve's forked servers), each series labelled ``pid``."""

    def __init__(self, proc: str = PROC) -> None:
        self._proc = Path(proc)

    def pids(self) -> list[int]:
        parent, command = os.getppid(), self._read("self", "cmdline")
        names = [entry.name for entry in self._proc.iterdir() if entry.name.isdigit()]
        return sorted(int(n) for n in names if self._parent(n) == parent and self._read(n, "cmdline") == command)

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        for pid in self.pids():
            collector = ProcessCollector(pid=functools.partial(int, pid), proc=str(self._proc), registry=None)
            for family in collector.collect():
                merged = families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    merged.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        return list(families.values())

    def _parent(self, pid: str) -> int | None:
        stat = self._read(pid, "stat")
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, the last ")" ends it.
        return int(stat.rsplit(b")", 1)[1].split()[1]) if stat else None

    def _read(self, pid: str, name: str) -> bytes:
        try:
            return (self._proc / pid / name).read_bytes()
        except OSError:
            return b""  # the process ended while we looked
