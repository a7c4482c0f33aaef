"""How long stores stopped after a partition healed: the figure the verdict bounds by the clients' liveness."""

from __future__ import annotations

from typing import Any

from chaos.faults import LANES, PARTITION_KINDS
from chaos.run_files import Fault

LIVENESS_SECONDS = 10.0  # the bound every connection of ordersctl notices a lost peer within (adapters/postgres.py)
STALL_MARGIN_SECONDS = 5.0
STALL_BOUND_SECONDS = LIVENESS_SECONDS + STALL_MARGIN_SECONDS
# A broker's partition may take the consumer group's coordinator away with it: when it lasts about the group's
# session timeout, every member's session expires at the heal, and the group re-forms after it (JoinGroup,
# SyncGroup) before any store: a CI run saw 17.2 s after a 9.3 s partition of the coordinator's broker.
GROUP_SESSION_SECONDS = 10.0  # ordersctl's session.timeout.ms (adapters/kafka.py CLASSIC_GROUP_DEFAULTS)


def stall_bound(kind: str) -> float:
    """The longest stall a fault of ``kind`` may leave after it ends: the clients' liveness bound plus a margin,
    and for a broker's fault the group's session timeout on top (it may take the group's coordinator with it)."""
    return STALL_BOUND_SECONDS + (GROUP_SESSION_SECONDS if kind in LANES["brokers"] else 0.0)


def healed_at(fault: Fault, faults: list[Fault]) -> float:
    """When the partition's disruption ended: its own end, or later when faults of other lanes were in progress
    then (a broker paused, a worker killed): stores can only be required to resume once those end too. One step,
    not a chain through the faults that began meanwhile: under a dense schedule a chain reaches the last fault of
    the run, and every partition would be judged by the run's final stall. The faults that began after the heal
    are taken out of the stall by ``attributable_stall`` instead."""
    return max([fault.end, *(f.end for f in faults if f is not fault and f.start <= fault.end < f.end)])


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
    stored = before[-1]["stored"]
    if _lag_at_heal(before[-1], end, samples) == 0:
        return 0.0
    return _seconds_until_stored_grew(stored, end, samples)


def _lag_at_heal(last: dict[str, Any], end: float, samples: list[dict[str, Any]]) -> Any:
    """The lag of the last sample before the heal (``last``). When the sampler could not read the group's offsets
    then (a broker partitioned), the first lag read after it says whether anything was waiting, provided nothing
    was stored meanwhile; None when neither tells."""
    lag = last.get("lag")
    if lag is not None:
        return lag
    after = [s for s in samples if s["t"] > end and s.get("lag") is not None]
    if after and after[0]["lag"] == 0 and after[0].get("stored") == last["stored"]:
        return 0
    return None


def _seconds_until_stored_grew(stored: Any, end: float, samples: list[dict[str, Any]]) -> float | None:
    """Seconds from ``end`` to the first sample whose stored count passes ``stored``; None when none does."""
    for s in samples:
        if s["t"] > end and s.get("stored") is not None and s["stored"] > stored:
            return max(0.0, float(s["t"]) - end)
    return None


def quiet_seconds(start: float, end: float, others: list[Fault]) -> float:
    """The seconds of [start, end] during which none of ``others`` was in progress."""
    covered, reach = 0.0, start
    for f in sorted(others, key=lambda f: f.start):
        lo, hi = max(f.start, reach), min(f.end, end)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return max(0.0, end - start - covered)


def recovering(fault: Fault, samples: list[dict[str, Any]]) -> Fault:
    """``fault`` with its recovery added: from its end until stores grew again, at most its kind's bound
    (``stall_bound``). Once stores resumed after it, a later stall is not its doing."""
    bound = stall_bound(fault.kind)
    recovery = stall_seconds(fault, samples)
    allowed = bound if recovery is None else min(bound, recovery)
    return Fault(fault.kind, fault.target, fault.start, fault.end + allowed)


def attributable_stall(fault: Fault, faults: list[Fault], samples: list[dict[str, Any]]) -> float | None:
    """The stall after the partition healed, less the time other faults were in progress or still recovering
    (``recovering``): a broker lost and a worker cut off while stores wait (a group rebalancing without
    its coordinator) stop every store on their own, and a broker killed just before the heal stops them for its
    own recovery after its end; neither is the healed partition's doing. The short run's dense schedule overlaps
    them (a Redis partition's "31.8 s" was a rebalance held by a lost coordinator and a cut-off member; another's
    15.4 s, a stall no fault in progress explained, followed faults of the other lanes that had just ended)."""
    healed = healed_at(fault, faults)
    stall = stall_seconds(fault, samples, healed)
    if not stall:
        return stall
    others = [recovering(f, samples) for f in faults if f is not fault]
    return quiet_seconds(healed, healed + stall, others)


def partition_stalls(faults: list[Fault], samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per partition of the run: its kind, target, length and stall after healing (the part of it no other
    fault explains)."""
    return [
        {"kind": f.kind, "target": f.target, "seconds": round(f.end - f.start, 1),
         "stall": attributable_stall(f, faults, samples)}
        for f in faults if f.kind in PARTITION_KINDS
    ]  # fmt: skip
