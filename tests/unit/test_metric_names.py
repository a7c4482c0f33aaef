"""Metric names by Prometheus' conventions, the README's metric table, build info and the process metrics of
serve's several processes. The real endpoints: tests/e2e/test_metrics.py."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from ordersctl import __version__
from ordersctl.api.metrics import ApiMetrics
from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.process_metrics import ServerProcesses
from tests.metric_conventions import families, problems, readme_table

BREACHES = """\
# HELP orders_stored_total New orders stored
# TYPE orders_stored_total counter
orders_stored_total 1.0
# HELP ordersctl_stored New orders stored
# TYPE ordersctl_stored counter
ordersctl_stored 1.0
# TYPE ordersctl_orders_total counter
ordersctl_orders_total 1.0
# HELP ordersctl_batch_duration_ms Time per batch
# TYPE ordersctl_batch_duration_ms gauge
ordersctl_batch_duration_ms 12.0
# HELP ordersctl_batch_duration Time per batch
# TYPE ordersctl_batch_duration gauge
ordersctl_batch_duration 0.012
# HELP ordersctl_consumer_lag Messages not yet committed
# TYPE ordersctl_consumer_lag gauge
ordersctl_consumer_lag 3.0
# HELP ordersctl_wait_total Time spent waiting
# TYPE ordersctl_wait_total counter
ordersctl_wait_total 3.0
# HELP ordersctl_errors_total Errors, as a gauge
# TYPE ordersctl_errors_total gauge
ordersctl_errors_total 3.0
# HELP ordersctl_mystery_seconds No TYPE line
ordersctl_mystery_seconds 1.0
"""


def _exposed() -> str:
    """Every metric of a consume worker and of a serve process, each labelled series made at least once."""
    counters = PipelineCounters()
    counters.batch_completed(3, 1, 1, ["invalid_json"], 0.2)
    counters.retried("store")
    counters.events_published(1)
    counters.partition_lag("orders", 0, 5)
    api = ApiMetrics()
    api.observe("/orders/{order_uid}", "GET", "200", 0.001)
    api.lookups.labels("memory").inc()
    return (generate_latest(counters.metrics.registry) + generate_latest(api.registry)).decode()


def test_the_conventions_check_finds_every_kind_of_breach() -> None:
    found = problems(BREACHES)
    assert found == [
        "ordersctl_stored: a counter whose name does not end in _total",
        "orders_stored_total: no ordersctl_ prefix",
        "ordersctl_orders_total: no help text",
        "ordersctl_batch_duration_ms: no unit at the end of the name (one of seconds, bytes, messages, fds, ratio)",
        "ordersctl_batch_duration_ms: not in base units (ms)",
        "ordersctl_batch_duration_ms: a time not in seconds (or without its unit)",
        "ordersctl_batch_duration: no unit at the end of the name (one of seconds, bytes, messages, fds, ratio)",
        "ordersctl_batch_duration: a time not in seconds (or without its unit)",
        "ordersctl_consumer_lag: no unit at the end of the name (one of seconds, bytes, messages, fds, ratio)",
        "ordersctl_wait_total: a time not in seconds (or without its unit)",
        "ordersctl_errors_total: a gauge named with a suffix reserved to other types",
        "ordersctl_mystery_seconds: no type",
    ]


def test_every_metric_of_consume_and_serve_follows_the_conventions() -> None:
    text = _exposed()
    assert problems(text) == []
    assert "_created" not in text, "a timestamp series without unit for each counter and histogram"
    build = f'ordersctl_build_info{{python_version="{platform.python_version()}",version="{__version__}"}} 1.0'
    assert build in text.splitlines()
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text


def _fake_proc(root: Path, parent: int, processes: dict[int, tuple[int, bytes]]) -> None:
    """A /proc with ``processes`` (pid -> parent pid, command line) and this process, ``self``, a server."""
    (root / "stat").write_text("cpu 1 2 3\nbtime 1700000000\n")
    entries = {str(pid): process for pid, process in processes.items()} | {"self": (parent, b"ordersctl\0serve\0")}
    for name, (ppid, command) in entries.items():
        entry = root / name
        (entry / "fd").mkdir(parents=True)
        (entry / "fd" / "0").touch()
        (entry / "cmdline").write_bytes(command)
        # After "(comm)": state, ppid, ..., utime and stime (11, 12), ..., starttime, vsize, rss (19-21).
        fields = ["S", str(ppid)] + ["0"] * 9 + ["150", "50"] + ["0"] * 6 + ["4200", "1000000", "25"]
        (entry / "stat").write_text(f"{name} (ordersctl serve) {' '.join(fields)}\n")
        (entry / "limits").write_text("Max open files            1024                 1024                 files\n")


def test_serve_processes_report_the_process_metrics_of_each_sibling_server_by_pid(tmp_path: Path) -> None:
    # prometheus_client's multiprocess mode collects no process metrics: serve --processes N had none at all.
    parent = os.getppid()
    serve = b"ordersctl\0serve\0"
    _fake_proc(
        tmp_path, parent, {101: (parent, serve), 102: (parent, serve), 103: (parent, b"bash\0"), 104: (1, serve)}
    )
    collector = ServerProcesses(str(tmp_path))
    assert collector.pids() == [101, 102], "the other children of serve's parent running serve, no other process"
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert problems(text) == []
    lines = text.splitlines()
    assert 'process_cpu_seconds_total{pid="101"} 2.0' in lines  # (150 + 50) ticks of 1/100 s
    assert 'process_resident_memory_bytes{pid="102"} ' + str(float(25 * os.sysconf("SC_PAGE_SIZE"))) in lines
    assert 'process_open_fds{pid="102"} 1.0' in lines


def test_the_readme_table_lists_every_metric_with_its_type_and_labels(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    _fake_proc(tmp_path, os.getppid(), {101: (os.getppid(), b"ordersctl\0serve\0")})
    registry.register(ServerProcesses(str(tmp_path)))
    exposed = families(_exposed() + generate_latest(registry).decode())
    assert readme_table() == exposed
