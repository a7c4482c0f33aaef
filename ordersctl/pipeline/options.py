"""What the supervisor tells each worker process; kept apart so that starting workers imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerOptions:
    worker_id: int = 0
    batch_size: int = 500
    stop_when_idle: float | None = None
    metrics_port: int | None = None
    report_every: float = 2.0
