"""The ingest benchmark's result: one JSON document (``--json``) or a table, both on stdout."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from bench.measure import Figures

NOT_DURABLE = (
    "PostgreSQL runs the {profile!r} profile, not 'durable' (fsync, synchronous_commit, full_page_writes on): "
    "these figures are NOT durable ones and do not count for the durable targets"
)
NOTES = {
    "client": "the command's processes over their whole lives (consume: supervisor + workers; psql; per-order)",
    "client_after_startup": "the same minus its CPU before the first order was stored (sampled every 0.5 s)",
    "client_steady": "the command's CPU from the first stored order until the last was stored and (consume) every "
    "event published, per order stored meanwhile: the steady state, without start-up, idle wait and shutdown",
    "client_steady_ratio_to_per_order": "client_steady ÷ the per-order design's client_steady, same run",
    "workers": "of the client, the worker processes (and the zygote they are forked from) over their whole lives, "
    "start-up included (exact: what the supervisor reaped)",
    "postgres": "every process of the PostgreSQL server over the run, only the bench's own probe subtracted: "
    "it includes whatever else the server did meanwhile",
    "postgres_this_database": "of which the backends of the run's own database (sampled: a lower bound)",
    "broker": "the local stack's Kafka JVM over the run, all of its work, whoever asked for it",
    "startup_cpu_s_by_process": "startup_cpu_s per process of the command (the supervisor, the zygote, each "
    "worker, multiprocessing's resource tracker), read at the same moment; a process's figure includes the children it "
    "has already reaped (the supervisor's, a worker that ended and was restarted)",
    "peak_rss_mib": "VmHWM of each process of the command, read until it exits",
    "orders_per_s_after_first": "orders/s from the first stored order on, without the start-up (rough: 0.5 s polls)",
}


def _us(seconds: float | None, orders: int) -> float | None:
    return None if seconds is None else round(seconds * 1e6 / orders, 1)


def figures_dict(f: Figures) -> dict[str, Any]:
    return {
        "name": f.name,
        "orders": f.orders,
        "seconds": round(f.seconds, 3),
        "orders_per_s": round(f.orders / f.seconds),
        "first_stored_after_s": round(f.first_seconds, 3),
        # Without the start-up; the count is polled every 0.5 s, so this is rougher on short runs.
        "orders_per_s_after_first": round(f.orders / (f.seconds - f.first_seconds))
        if f.seconds > f.first_seconds
        else None,
        "cpu_us_per_order": {
            "client": _us(f.client_cpu, f.orders),
            "workers": _us(f.workers_cpu, f.orders),
            "client_after_startup": _us(f.client_cpu - f.startup_cpu, f.orders),
            "client_steady": _us(f.steady_cpu, f.steady_orders) if f.steady_orders > 0 else None,
            "postgres": _us(f.postgres_cpu, f.orders),
            "postgres_this_database": _us(f.postgres_db_cpu, f.orders),
            "broker": _us(f.broker_cpu, f.orders),
        },
        "startup_cpu_s": round(f.startup_cpu, 3),
        "startup_cpu_s_by_process": {label: round(cpu, 3) for label, cpu in sorted(f.startup_cpu_by_process.items())},
        "peak_rss_mib": {label: round(kib / 1024, 1) for label, kib in sorted(f.peak_rss_kib.items())},
    }


def ingest_result(
    profile: str,
    orders: int,
    items: float,
    copy: Figures,
    runs: list[Figures],
    baseline: Figures | None,
    backlog: Figures | None = None,
) -> dict[str, Any]:
    ceiling = figures_dict(copy)
    per_order = figures_dict(baseline) if baseline else None
    consume = []
    for run in runs:
        row = figures_dict(run)
        row["ratio_to_ceiling"] = round(row["orders_per_s"] / ceiling["orders_per_s"], 3)
        if row["orders_per_s_after_first"]:
            row["ratio_to_ceiling_after_first"] = round(row["orders_per_s_after_first"] / ceiling["orders_per_s"], 3)
        if per_order:
            row["times_per_order_design"] = {
                "orders_per_s": round(row["orders_per_s"] / per_order["orders_per_s"], 1),
                "client_cpu": round(per_order["cpu_us_per_order"]["client"] / row["cpu_us_per_order"]["client"], 1),
            }
            steady, design = row["cpu_us_per_order"]["client_steady"], per_order["cpu_us_per_order"]["client_steady"]
            if steady and design:
                row["client_steady_ratio_to_per_order"] = round(steady / design, 4)
        consume.append(row)
    if per_order:
        per_order["ratio_to_ceiling"] = round(per_order["orders_per_s"] / ceiling["orders_per_s"], 3)
    return {
        "postgres_profile": profile,
        "durable": profile == "durable",
        "machine_cores": os.cpu_count(),
        "orders": orders,
        "items_per_order": round(items, 2),
        "ceiling": ceiling,
        "consume": consume,
        "per_order_design": per_order,
        # One worker draining a large backlog (--backlog): what its memory reaches, and its CPU at scale.
        "backlog": figures_dict(backlog) if backlog else None,
        "notes": NOTES,
    }


def emit(result: dict[str, Any], as_json: bool, table: Callable[[dict[str, Any]], str]) -> None:
    durable = result.get("durable", False)
    if not durable:
        print("\n!! " + NOT_DURABLE.format(profile=result["postgres_profile"]) + "\n", file=sys.stderr)
    print(json.dumps(result, indent=2) if as_json else table(result))


def _cell(value: float | None, width: int, digits: int = 0) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _process_lines(row: dict[str, Any]) -> list[str]:
    """One consume run's memory and start-up per process, and its steady state."""
    peaks = ", ".join(f"{label} {mib}" for label, mib in row["peak_rss_mib"].items())
    startup = ", ".join(f"{label} {cpu}" for label, cpu in row["startup_cpu_s_by_process"].items())
    ratio = row.get("client_steady_ratio_to_per_order")
    versus = f" (÷ per-order design {ratio})" if ratio else ""
    return [
        f"peak RSS MiB, {row['name']}: {peaks}",
        f"start-up CPU s, {row['name']}: {row['startup_cpu_s']}" + (f" ({startup})" if startup else ""),
        f"steady CPU µs per order, {row['name']}: {row['cpu_us_per_order']['client_steady']}{versus}",
    ]


def ingest_table(result: dict[str, Any]) -> str:
    profile = result["postgres_profile"]
    durable = "durable: fsync, synchronous_commit, full_page_writes on" if result["durable"] else "NOT DURABLE"
    lines = [
        f"PostgreSQL profile: {profile} ({durable})",
        f"machine: {result['machine_cores']} cores; {result['orders']} orders, ~{result['items_per_order']} items each",
        "",
        f"{'':<30}{'':>9}{'':>7}{'':>7}{'':>7}{'':>7}   {'CPU µs per stored order':-^65}{'peak RSS':>10}",
        f"{'mode':<30}{'orders/s':>9}{'÷ceil':>7}{'1st→':>7}{'÷ceil':>7}{'x p-o':>7}   {'client':>8}{'-startup':>9}"
        f"{'workers':>8}{'PostgreSQL':>12}{'(this db)':>10}{'broker':>8}{'(x p-o)':>10}{'worker':>10}",
    ]
    baseline = [result["per_order_design"]] if result["per_order_design"] else []
    backlog = [result["backlog"]] if result.get("backlog") else []
    for row in [result["ceiling"], *result["consume"], *baseline, *backlog]:
        cpu = row["cpu_us_per_order"]
        times = row.get("times_per_order_design", {})
        workers = [mib for label, mib in row["peak_rss_mib"].items() if label.startswith("worker")]
        ratio = 1.0 if row is result["ceiling"] else row.get("ratio_to_ceiling")
        lines.append(
            f"{row['name']:<30}{row['orders_per_s']:>9}{_cell(ratio, 7, 2)}"
            f"{_cell(row['orders_per_s_after_first'], 7)}{_cell(row.get('ratio_to_ceiling_after_first'), 7, 2)}"
            f"{_cell(times.get('orders_per_s'), 7, 1)}   "
            f"{_cell(cpu['client'], 8)}{_cell(cpu['client_after_startup'], 9)}{_cell(cpu.get('workers'), 8)}"
            f"{_cell(cpu['postgres'], 12)}{_cell(cpu['postgres_this_database'], 10)}{_cell(cpu['broker'], 8)}"
            f"{_cell(times.get('client_cpu'), 10, 1)}{_cell(max(workers, default=None), 10, 1)}"
        )
    lines.append("")
    for row in [*result["consume"], *backlog]:
        lines += _process_lines(row)
    if result["per_order_design"]:
        lines.append(f"per-order design: the first {result['per_order_design']['orders']} of the same orders")
    lines += [
        "",
        "÷ceil = orders/s ÷ the psql \\copy ceiling of this run (end to end, then from the first stored order on); "
        "x p-o = ordersctl ÷ the per-order design (orders/s; and its client CPU per order ÷ ours); "
        "1st→ = orders/s from the first stored order on; peak RSS = the largest worker's VmHWM",
        *(f"{name}: {text}" for name, text in NOTES.items()),
    ]
    if not result["durable"]:
        lines += ["", "!! " + NOT_DURABLE.format(profile=profile)]
    return "\n".join(lines)
