"""Counters of one worker, in a form the supervisor can add up across processes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
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
    blocked: str = ""  # what the worker waits on and for how long, e.g. "store 12s"; empty while it works

    def as_dict(self) -> dict[str, Any]:
        return {f.name: dict(self.dlq) if f.name == "dlq" else getattr(self, f.name) for f in fields(self)}

    @classmethod
    def total(cls, snapshots: list[dict[str, Any]]) -> WorkerStats:
        out = cls()
        for snapshot in snapshots:
            for f in fields(out):
                if f.name == "dlq":
                    out.dlq.update(snapshot["dlq"])
                elif f.name == "blocked":
                    continue  # a state, not a count: the supervisor shows each worker's latest (``totals``)
                else:
                    setattr(out, f.name, getattr(out, f.name) + snapshot[f.name])
        return out

    def line(self) -> str:
        counts = {**self.as_dict(), "dlq": sum(self.dlq.values())}
        order = ("consumed", "stored", "duplicates", "dlq", "events", "retries", "lag")
        return " ".join(f"{name}={counts[name]}" for name in order) + (
            f" blocked={self.blocked}" if self.blocked else ""
        )
