"""The run's report: a one-screen summary, a JSON document, recovery times, and a timeline picture."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

from chaos.checker import PG_DOWN_KINDS, Report
from chaos.faults import EVERY_KIND, KINDS, PG_FAULTS
from chaos.run_files import Fault, RunFiles


def recovery_seconds(fault: Fault, samples: list[dict[str, Any]]) -> float | None:
    """Seconds from the fault's end until the lag falls again (or is 0); None if it never did in the run."""
    previous: int | None = None
    for s in samples:
        lag = s.get("lag")
        if s["t"] < fault.end or lag is None:
            previous = lag if s["t"] < fault.end else previous
            continue
        if lag == 0 or (previous is not None and lag < previous):
            return max(0.0, float(s["t"]) - fault.end)
        previous = lag
    return None


def run_kinds(run: RunFiles) -> list[str]:
    """The kinds the run's schedule held (they depend on its PostgreSQL: ``chaos.faults.lanes``)."""
    planned = {kind for s in run.lines("schedule") for kinds in s["lanes"].values() for kind in kinds}
    return [kind for kind in EVERY_KIND if kind in planned] or list(KINDS)


def summarize(run: RunFiles, checked: Report) -> dict[str, Any]:
    faults = run.faults()
    samples = run.lines("samples")
    recoveries: dict[str, list[float]] = {}
    for fault in faults:
        seconds = recovery_seconds(fault, samples)
        if seconds is not None:
            recoveries.setdefault(fault.kind, []).append(seconds)
    every = [s for kind in recoveries.values() for s in kind]
    return {
        **checked.as_json(),
        "seed": run.spec().seed,
        "faults": dict(Counter(f.kind for f in faults)),
        "kinds": run_kinds(run),
        # The Citus and HA PostgreSQL faults, each with its target (the HA failover's time is part of it).
        "pg_faults": [
            (f.kind, f.target) for f in faults if f.kind in PG_DOWN_KINDS and f.kind not in PG_FAULTS["plain"]
        ],
        "recovery_seconds": {
            "median": statistics.median(every) if every else None,
            "max": max(every) if every else None,
            "by_kind": {k: {"median": statistics.median(v), "max": max(v)} for k, v in recoveries.items()},
        },
    }


def human(summary: dict[str, Any]) -> str:
    lines = [f"chaos run, seed {summary['seed']}: {'PASSED' if summary['ok'] else 'FAILED'}"]
    figures = summary["figures"]
    lines.append("  " + ", ".join(f"{k}={v}" for k, v in figures.items() if k != "partitions"))
    lines.append("  faults: " + ", ".join(f"{k} {summary['faults'].get(k, 0)}" for k in summary.get("kinds", KINDS)))
    rec = summary["recovery_seconds"]
    if rec["median"] is not None:
        lines.append(f"  recovery: median {rec['median']:.1f} s, max {rec['max']:.1f} s")
    for kind, target in summary.get("pg_faults", []):
        lines.append(f"  {kind} on {target}")
    for p in figures.get("partitions", []):
        stall = "never resumed" if p["stall"] is None else f"stores resumed {p['stall']:.1f} s after healing"
        lines.append(f"  {p['kind']} on {p['target']}: {stall}")
    for line in summary["lines"]:
        lines.append(f"  [{'ok' if line['ok'] else 'FAIL'}] {line['name']}: {line['detail']}")
    return "\n".join(lines)


def timeline(run: RunFiles, path: Path) -> Path | None:
    """Stored orders/s and total lag over time, each fault drawn as a band. Needs the `chaos` extra."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    every = run.lines("samples")
    samples = [s for s in every if s.get("stored") is not None]
    if len(samples) < 2:
        return None
    t0 = every[0]["t"]
    times, rates = _rates(samples, t0)
    lagged = [s for s in every if s.get("lag") is not None]
    fig, (top, middle, bottom) = plt.subplots(
        3, 1, sharex=True, figsize=(14, 8), gridspec_kw={"height_ratios": [3, 3, 2]}
    )
    top.plot(times, rates, linewidth=0.8)
    top.set_ylabel("stored orders/s")
    middle.plot([s["t"] - t0 for s in lagged], [s["lag"] for s in lagged], color="tab:red", linewidth=0.8)
    middle.set_ylabel("total lag")
    kinds = run_kinds(run)
    _fault_bands(run, kinds, t0, plt.get_cmap("tab10"), bottom, (top, middle))
    bottom.set_yticks(range(len(kinds)), kinds, fontsize=7)
    bottom.invert_yaxis()
    bottom.set_xlabel("seconds since start")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _rates(samples: list[dict[str, Any]], t0: float) -> tuple[list[float], list[float]]:
    """Stored orders/s between successive samples, at the later sample's time since ``t0``."""
    times = [s["t"] - t0 for s in samples[1:]]
    rates = [max(0, b["stored"] - a["stored"]) / max(b["t"] - a["t"], 1e-3) for a, b in pairwise(samples)]
    return times, rates


def _fault_bands(run: RunFiles, kinds: list[str], t0: float, palette: Any, rows: Any, curves: tuple[Any, ...]) -> None:
    """Each fault as a bar in its kind's row, and as a faint band over the curves, to read them together."""
    for row, kind in enumerate(kinds):
        color = palette(row)
        spans = [(f.start - t0, max(f.end - f.start, 0.5)) for f in run.faults() if f.kind == kind]
        rows.broken_barh(spans, (row - 0.4, 0.8), color=color)
        for start, width in spans:
            for ax in curves:
                ax.axvspan(start, start + width, color=color, alpha=0.12, lw=0)


def write(run: RunFiles, checked: Report) -> dict[str, Any]:
    summary = summarize(run, checked)
    picture = timeline(run, run.folder / "timeline.png")
    summary["timeline"] = str(picture) if picture else None
    (run.folder / "report.json").write_text(json.dumps(summary, indent=2))
    return summary
