"""How long stores stopped after a partition healed: the figure the verdict bounds by the clients' liveness."""

from __future__ import annotations

from typing import Any

from chaos.faults import PARTITION_KINDS
from chaos.run_files import Fault

LIVENESS_SECONDS = 10.0  # the bound every connection of ordersctl notices a lost peer within (adapters/postgres.py)
STALL_MARGIN_SECONDS = 5.0
STALL_BOUND_SECONDS = LIVENESS_SECONDS + STALL_MARGIN_SECONDS


def healed_at(fault: Fault, faults: list[Fault]) -> float:
    """When the partition's disruption ended: its own end, or later when faults of other lanes were still in
    progress then (a broker paused, a worker killed): stores can only be required to resume once they end too."""
    end = fault.end
    moved = True
    while moved:
        later = [f.end for f in faults if f is not fault and f.start <= end < f.end]
        moved = bool(later)
        end = max([end, *later])
    return end


def stall_seconds(fault: Fault, samples: list[dict[str, Any]], healed: float | None = None) -> float | None:
    """Seconds from the partition's end until the stored count grew again: how long stores stopped after the
    network healed. 0 when nothing waited at the end (no lag); None when stores never resumed in the run's samples.

    The count of stored orders only, not the lag: faults of the other lanes run meanwhile (a broker paused holds
    its partitions' lag up while the others store), and a partition that never stopped the stores (Redis's, one
    worker's, one broker's) shows no stall."""
    end = fault.end if healed is None else healed
    before = [s for s in samples if s["t"] <= end and s.get("stored") is not None]
    if not before:
        return None
    stored, lag = before[-1]["stored"], before[-1].get("lag")
    if lag == 0:
        return 0.0
    for s in samples:
        if s["t"] > end and s.get("stored") is not None and s["stored"] > stored:
            return max(0.0, float(s["t"]) - end)
    return None


def partition_stalls(faults: list[Fault], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per partition of the run: its kind, target, length and stall after healing."""
    return [
        {"kind": f.kind, "target": f.target, "seconds": round(f.end - f.start, 1),
         "stall": stall_seconds(f, samples, healed_at(f, faults))}
        for f in faults if f.kind in PARTITION_KINDS
    ]  # fmt: skip
