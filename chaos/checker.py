"""The independent checker: what PostgreSQL and the topics hold, against what the seed says was produced.

It trusts none of the pipeline's own counters. Each line holds or not; any line that does not makes the exit
code non-zero."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import psycopg

from chaos.orders import messages
from chaos.run_files import Fault, RunFiles
from chaos.stall import STALL_BOUND_SECONDS, partition_stalls, stall_bound
from chaos.topics import read_all

# PostgreSQL (or, on Citus, the shards of a worker node) out of reach: serve may answer 503 meanwhile.
PG_DOWN_KINDS = ("pg-crash", "pg-partition", "citus-worker-kill", "ha-primary-kill")
GRACE_SECONDS = 15.0  # after PostgreSQL is back, the pool reconnects and a read may still fail once


@dataclass
class Line:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    lines: list[Line] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(line.ok for line in self.lines)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.lines.append(Line(name, ok, detail))

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "lines": [vars(line) for line in self.lines], "figures": self.figures}


def _pg_down(at: float, faults: list[Fault]) -> bool:
    return any(f.kind in PG_DOWN_KINDS and f.start <= at <= f.end + GRACE_SECONDS for f in faults)


def check(run: RunFiles) -> Report:
    spec = run.spec()
    report = Report()
    expected_items: dict[str, int] = {}
    poison: dict[str, str] = {}
    for m in messages(spec.seed, spec.count, spec.poison_every):
        if m.kind == "valid":
            expected_items[m.uid] = m.items
        else:
            poison[m.uid] = m.kind
    with psycopg.connect(spec.dsn) as conn:
        stored_items = {str(uid): int(n) for uid, n in conn.execute(
            "SELECT o.order_uid, count(i.order_uid) FROM orders o LEFT JOIN items i USING (order_uid)"
            " GROUP BY o.order_uid")}  # fmt: skip
        pending = {str(uid) for (uid,) in conn.execute("SELECT order_uid FROM outbox")}
    valid, stored = set(expected_items), set(stored_items)
    lost, extra = valid - stored, stored - valid
    report.figures.update(produced=spec.count, valid=len(valid), poison=len(poison), stored=len(stored))
    example = f" (e.g. lost {sorted(lost)[:3]})" if lost else ""
    report.add("stored set equals the produced valid set", not lost and not extra,
               f"lost {len(lost)}, extra {len(extra)}{example}")  # fmt: skip
    wrong_items = [uid for uid in valid & stored if stored_items[uid] != expected_items[uid]]
    report.add("item rows are exact", not wrong_items, f"{len(wrong_items)} orders with wrong item counts")
    _check_dlq(spec.bootstrap, spec.dlq_topic, valid, poison, report)
    _check_events(spec.bootstrap, spec.events_topic, stored, pending, report)
    _check_offsets(run, spec.bootstrap, spec.orders_topic, valid, stored, report)
    _check_reads(run, report)
    _check_faults(run, report)
    _check_stalls(run, report)
    return report


def _check_stalls(run: RunFiles, report: Report) -> None:
    """After each partition heals, stores resume within the clients' liveness bound plus a margin."""
    stalls = partition_stalls(run.faults(), run.lines("samples"))
    if not stalls:
        return
    report.figures["partitions"] = stalls
    slow = [s for s in stalls if s["stall"] is None or s["stall"] > stall_bound(s["kind"])]
    worst = max((s["stall"] for s in stalls if s["stall"] is not None), default=0.0)
    bounds = f"{STALL_BOUND_SECONDS:.0f} s ({stall_bound('broker-partition'):.0f} s for a broker's)"
    report.add(f"stores resumed within {bounds} of every partition healing", not slow,
               f"{len(stalls)} partitions, longest stall {worst:.1f} s"
               + (f"; first too slow: {slow[0]}" if slow else ""))  # fmt: skip


def _check_faults(run: RunFiles, report: Report) -> None:
    """The run proves something only if its faults happened: every scheduled one, none failing to inject."""
    planned = sum(int(s["planned"]) for s in run.lines("schedule"))
    injected = len(run.faults())
    errors = run.lines("errors")
    detail = f"{injected} of {planned} injected" + (f"; {errors[0]['lane']}: {errors[0]['error']}" if errors else "")
    report.add("every scheduled fault was injected", not errors and injected == planned, detail)


def _check_dlq(bootstrap: str, topic: str, valid: set[str], poison: dict[str, str], report: Report) -> None:
    dead = Counter(r.key for r in read_all(bootstrap, topic))
    wrongly = valid & set(dead)
    report.add("no valid order is in the DLQ", not wrongly, f"{len(wrongly)} valid orders dead-lettered")
    missing = set(poison) - set(dead)
    copies = sum(n - 1 for n in dead.values() if n > 1)
    report.figures["dlq_duplicates"] = copies
    detail = f"{len(missing)} missing; {copies} duplicate dead letters (at least once: counted, allowed)"
    report.add("every poison message is in the DLQ", not missing, detail)


def _check_events(bootstrap: str, topic: str, stored: set[str], pending: set[str], report: Report) -> None:
    ids: dict[str, set[str]] = defaultdict(set)
    count = 0
    for r in read_all(bootstrap, topic):
        ids[r.key].add(r.headers.get("event-id", ""))
        count += 1
    without = stored - set(ids)  # the run drains the outbox first: a pending event is a missing one
    split = [uid for uid, found in ids.items() if len(found) > 1]
    report.figures.update(events=count, event_duplicates=count - len(ids), outbox_pending=len(pending))
    report.add(
        "every stored order has an event", not without, f"{len(without)} without (outbox pending {len(pending)})"
    )
    report.add("all events of one order carry one event id", not split, f"{len(split)} orders with several ids")


def _check_offsets(run: RunFiles, bootstrap: str, topic: str, valid: set[str], stored: set[str], rep: Report) -> None:
    """Every snapshot of the committed offsets (taken during the run, right after each fault) covers only
    messages that are stored or dead-lettered: a commit never passed an order that was then lost."""
    snapshots = run.lines("offsets")
    if not snapshots:
        rep.add("committed offsets never point past stored rows", False, "no offset snapshots were taken")
        return
    # Committed offsets only grow, and the stored set only grows: checking the highest snapshot per partition
    # checks every earlier one.
    highest: dict[int, int] = {}
    for snap in snapshots:
        for p, o in snap["offsets"].items():
            highest[int(p)] = max(highest.get(int(p), -1), int(o))
    ahead = sum(
        1
        for r in read_all(bootstrap, topic)
        if r.offset < highest.get(r.partition, -1) and r.key in valid and r.key not in stored
    )
    rep.add("committed offsets never point past stored rows", ahead == 0,
            f"{len(snapshots)} snapshots; {ahead} committed-but-unstored orders")  # fmt: skip


def _check_reads(run: RunFiles, report: Report) -> None:
    faults = run.faults()
    reads = run.lines("reads")
    statuses = Counter(int(r["status"]) for r in reads)
    bad = [r for r in reads if r["status"] != 200 and not (r["status"] == 503 and _pg_down(r["t"], faults))]
    report.figures["reads"] = dict(statuses)
    report.add("the API answered every read of a stored order", not bad and bool(reads),
               f"{len(reads)} reads {dict(statuses)}; {len(bad)} unexplained"
               + (f" (first: {bad[0]})" if bad else ""))  # fmt: skip
