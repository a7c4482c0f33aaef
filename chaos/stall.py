"""How long stores stopped after a partition healed: the figure the verdict bounds by the clients' liveness."""

from __future__ import annotations

from typing import Any

from chaos.faults import PARTITION_KINDS
from chaos.run_files import Fault

LIVENESS_SECONDS = 10.0  # the bound every connection of ordersctl notices a lost peer within (adapters/postgres.py)
STALL_MARGIN_SECONDS = 5.0
STALL_BOUND_SECONDS = LIVENESS_SECONDS + STALL_MARGIN_SECONDS


def stall_seconds(fault: Fault, samples: list[dict[str, Any]]) -> float | None:
    """Seconds from the partition's end until stores resumed: the stored count grew and the lag fell (or is 0).
    0 when nothing waited at the end; None when stores never resumed within the run's samples."""
    before = [s for s in samples if s["t"] <= fault.end and s.get("stored") is not None]
    if not before:
        return None
    stored, lag = before[-1]["stored"], before[-1].get("lag")
    if lag == 0:
        return 0.0
    grew = fell = None
    for s in samples:
        if s["t"] <= fault.end:
            continue
        if grew is None and s.get("stored") is not None and s["stored"] > stored:
            grew = s["t"]
        if fell is None and s.get("lag") is not None and (s["lag"] == 0 or lag is None or s["lag"] < lag):
            fell = s["t"]
        if grew is not None and fell is not None:
            return max(0.0, float(max(grew, fell)) - fault.end)
    return None


def partition_stalls(faults: list[Fault], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per partition of the run: its kind, target, length and stall after healing."""
    return [
        {"kind": f.kind, "target": f.target, "seconds": round(f.end - f.start, 1),
         "stall": stall_seconds(f, samples)}
        for f in faults if f.kind in PARTITION_KINDS
    ]  # fmt: skip
