"""A run's files: what was asked (run.json) and what happened (faults, offset snapshots, API reads, samples).

The checker reads only these, PostgreSQL and the topics, so it can check any run, including one on a user's
staging stack, after the fact."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunSpec:
    seed: int
    count: int
    poison_every: int
    dsn: str
    bootstrap: str
    orders_topic: str
    dlq_topic: str
    events_topic: str
    group: str
    partitions: int


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str
    start: float
    end: float


class RunFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def start_afresh(self) -> None:
        """A folder holds one run: what an earlier run left there would be read as this one's."""
        for name in ("run.json", "report.json", "timeline.png", *(p.name for p in self.folder.glob("*.jsonl"))):
            (self.folder / name).unlink(missing_ok=True)

    def write_spec(self, spec: RunSpec) -> None:
        (self.folder / "run.json").write_text(json.dumps(asdict(spec), indent=2))

    def spec(self) -> RunSpec:
        return RunSpec(**json.loads((self.folder / "run.json").read_text()))

    def append(self, name: str, record: dict[str, Any]) -> None:
        with (self.folder / f"{name}.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def lines(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / f"{name}.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def faults(self) -> list[Fault]:
        return [Fault(**f) for f in self.lines("faults")]
