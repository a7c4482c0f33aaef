"""The benchmarks' own logic without services: /proc readings, the result document and its table, percentiles."""

from __future__ import annotations

import os
import subprocess
import sys

from bench import latency
from bench.latency import Phase, distribution, percentile, phase_result
from bench.measure import Figures
from bench.proc import descendants, read_stat, tree_cpu, tree_stats
from bench.report import ingest_result, ingest_table
from bench.tracing import result, table


def test_a_child_is_found_and_an_exited_one_keeps_its_final_stat_until_reaped() -> None:
    me = read_stat(os.getpid())
    assert me is not None and me.ppid == os.getppid()
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert child.pid in [s.pid for s in descendants(os.getpid())]
        assert tree_cpu(os.getpid()) >= me.own
        tree = tree_stats(os.getpid())
        assert tree[0].pid == os.getpid() and child.pid in [s.pid for s in tree[1:]], "the root first, then the rest"
        assert child.stdin is not None
        child.stdin.close()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        zombie = read_stat(child.pid)
        assert zombie is not None and zombie.state == "Z" and zombie.ppid == os.getpid()
    finally:
        child.wait()
    after = read_stat(child.pid)
    assert after is None or after.key != zombie.key, "reaped: gone (or the pid is another process now)"


def _figures(
    name: str, orders: int, seconds: float, client: float, startup: float = 0.0, workers: float | None = None
) -> Figures:
    return Figures(
        name, orders, seconds, first_seconds=seconds / 4, client_cpu=client, workers_cpu=workers,
        startup_cpu=startup, postgres_cpu=orders * 100e-6, postgres_db_cpu=orders * 80e-6, broker_cpu=None,
        peak_rss_kib={"supervisor": 65_536, "worker (pid 2)": 102_400},
        startup_cpu_by_process={"supervisor": startup * 0.4, "worker (pid 2)": startup * 0.6} if startup else {},
    )  # fmt: skip


def test_the_result_compares_with_the_ceiling_and_the_per_order_design() -> None:
    copy = _figures("psql \\copy (ceiling)", 10_000, 1.0, 0.02)
    consume = _figures("consume --workers 2", 10_000, 2.0, 1.0, startup=0.5, workers=0.8)
    baseline = _figures("per-order design", 1_000, 10.0, 1.0)
    backlog = _figures("1,000,000 backlog, 1 worker", 1_000_000, 200.0, 70.0, workers=60.0)
    result = ingest_result("durable", 10_000, 3.0, copy, [consume], baseline, backlog)
    row = result["consume"][0]
    assert result["durable"] is True
    assert row["orders_per_s"] == 5000 and row["ratio_to_ceiling"] == 0.5
    # From the first stored order on (a quarter of the run was start-up): 10,000 in 1.5 s.
    assert row["orders_per_s_after_first"] == 6667 and row["ratio_to_ceiling_after_first"] == 0.667
    cpu = row["cpu_us_per_order"]
    assert cpu["client"] == 100.0 and cpu["client_after_startup"] == 50.0 and cpu["workers"] == 80.0
    assert row["times_per_order_design"] == {"orders_per_s": 50.0, "client_cpu": 10.0}
    assert row["peak_rss_mib"] == {"supervisor": 64.0, "worker (pid 2)": 100.0}
    assert result["backlog"]["cpu_us_per_order"]["workers"] == 60.0
    # Start-up, in all and per process (the supervisor's apart from the worker's, which is the figure).
    assert row["startup_cpu_s"] == 0.5 and row["startup_cpu_s_by_process"] == {"supervisor": 0.2, "worker (pid 2)": 0.3}
    table = ingest_table(result)
    assert "start-up CPU s, consume --workers 2: 0.5 (supervisor 0.2, worker (pid 2) 0.3)" in table
    assert "consume --workers 2" in table and "NOT DURABLE" not in table
    backlog_line = next(line for line in table.splitlines() if line.startswith("1,000,000 backlog, 1 worker"))
    assert backlog_line.split()[-1] == "100.0", "the largest worker's peak RSS, not the supervisor's"


def test_the_steady_state_is_its_own_window_and_is_compared_with_the_per_order_designs() -> None:
    copy = _figures("psql \\copy (ceiling)", 10_000, 1.0, 0.02)
    consume = _figures("consume --workers 1", 10_000, 2.0, 1.0, startup=0.5)
    consume.steady_cpu, consume.steady_orders = 0.36, 9_000  # the first 1,000 stored in the start-up
    baseline = _figures("per-order design", 1_000, 10.0, 1.0)
    baseline.steady_cpu, baseline.steady_orders = 0.9, 900
    result = ingest_result("durable", 10_000, 3.0, copy, [consume], baseline)
    row = result["consume"][0]
    assert row["cpu_us_per_order"]["client_steady"] == 40.0  # 0.36 s / 9,000, not / 10,000
    assert row["cpu_us_per_order"]["client_after_startup"] == 50.0  # shutdown and idle wait included
    assert row["client_steady_ratio_to_per_order"] == 0.04
    assert "steady CPU µs per order, consume --workers 1: 40.0 (÷ per-order design 0.04)" in ingest_table(result)
    unseen = _figures("consume --workers 2", 10_000, 2.0, 1.0, startup=0.5)  # the window never closed
    assert (
        ingest_result("durable", 10_000, 3.0, copy, [unseen], baseline)["consume"][0]["cpu_us_per_order"][
            "client_steady"
        ]
        is None
    )


def test_figures_of_the_fast_profile_are_never_presented_as_durable() -> None:
    copy = _figures("psql \\copy (ceiling)", 100, 1.0, 0.01)
    result = ingest_result("fast", 100, 3.0, copy, [], None)
    assert result["durable"] is False
    assert "NOT DURABLE" in ingest_table(result)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile(values, 1.0) == 100.0
    assert percentile([7.0], 0.99) == 7.0


def test_the_tracing_figures_are_the_medians_of_the_runs_off_and_on() -> None:
    off = [_figures("tracing off", 10_000, 4.0, cpu, workers=cpu / 2) for cpu in (2.5, 2.0, 9.0)]
    on = [_figures("tracing on", 10_000, 5.0, cpu, workers=cpu / 2) for cpu in (3.0, 3.5, 3.1)]
    res = result("durable", off, on, spans=30_600)
    assert res["tracing"]["off"]["client_cpu_us_per_order"] == 250.0  # the median: an outlier run does not count
    assert res["tracing"]["on"]["client_cpu_us_per_order"] == 310.0
    assert res["tracing_cpu_us_per_order"] == 60.0 and res["tracing_cpu_ratio"] == 1.24
    assert res["spans_exported_per_order"] == 1.02
    assert "tracing costs 60.0 µs CPU per order (x1.24)" in table(res)


def test_a_phase_reports_its_first_second_apart_from_its_steady_state() -> None:
    keys = [f"k{i}".encode() for i in range(300)]
    orders = {k: 1000 + i for i, k in enumerate(keys)}
    # The first second (100 orders at 100/s) took 50 ms each; the steady state 1 to 10 ms, one at 40 ms.
    events = {k: orders[k] + (50 if i < 100 else 1 + i % 10) for i, k in enumerate(keys)}
    events[keys[250]] = orders[keys[250]] + 40
    del events[keys[299]]
    stored = {k: orders[k] + 0.5 for k in keys}  # each store began half a millisecond after its order was produced
    result = phase_result(Phase(100.0, keys, 99.5), orders, events, stored)
    assert result["missing_events"] == 1 and result["orders"] == 300
    assert result["steady_to_store"]["orders"] == 199 and result["steady_to_store"]["max"] == 0.5
    assert result["steady_store_to_event"]["max"] == 39.5, "the slow one was slow after its store began"
    first, steady = result["first_second"], result["steady"]
    assert first["orders"] == 100 and first["p50"] == first["max"] == 50.0
    assert steady["orders"] == 199 and steady["max"] == 40.0 and steady["p50"] == 6.0
    assert steady["p99.9"] == 40.0 and steady["p99"] == 10.0


def test_the_latency_table_shows_each_rate_and_the_cold_path() -> None:
    phase = {"rate": 200.0, "rate_achieved": 199.8, "orders": 2, "missing_events": 0,
             "first_second": distribution([3.0]), "steady": distribution([4.0])}  # fmt: skip
    cold = {"idle_seconds": 10.0, "samples_ms": [7.0, 9.0], "missing_events": 0}
    result = {"postgres_profile": "durable", "durable": True, "workers": 2, "partitions": 4, "seconds": 1.0,
              "rates": [phase], "cold": cold}  # fmt: skip
    text = latency.table(result)
    assert "200/s steady" in text and "200/s first second" in text and "p99.9 ms" in text
    assert "ms: 7, 9" in text and "NOT DURABLE" not in text and "have no event" not in text
    assert distribution([]) == {"orders": 0}
