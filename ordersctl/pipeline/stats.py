"""Counters of one worker, in a form the supervisor can add up across processes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class WorkerStats:
    consumed: int = 0
    stored: int = 0
    duplicates: int = 0
    dlq: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    events: int = 0
    lag: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "dlq": dict(self.dlq),
            "retries": self.retries,
            "events": self.events,
            "lag": self.lag,
        }

    @classmethod
    def total(cls, snapshots: list[dict[str, Any]]) -> WorkerStats:
        out = cls()
        for s in snapshots:
            out.consumed += s["consumed"]
            out.stored += s["stored"]
            out.duplicates += s["duplicates"]
            out.dlq.update(s["dlq"])
            out.retries += s["retries"]
            out.events += s["events"]
            out.lag += s["lag"]
        return out

    def line(self) -> str:
        dlq = sum(self.dlq.values())
        return (
            f"consumed={self.consumed} stored={self.stored} duplicates={self.duplicates} dlq={dlq}"
            f" events={self.events} retries={self.retries} lag={self.lag}"
        )
