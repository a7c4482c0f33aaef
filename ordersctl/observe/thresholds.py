"""What ``status`` judges against. Apart from status.py, which reads every source, so that the CLI can show the
defaults in its help without loading the clients."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_OUTBOX_AGE_SECONDS = 300.0


@dataclass(frozen=True)
class Thresholds:
    """Beyond these the status is not healthy."""

    max_lag: int | None = None  # total over the partitions; None: lag is shown, never judged
    max_outbox_age_seconds: float = DEFAULT_MAX_OUTBOX_AGE_SECONDS
    # Lag whose committed offsets have not moved this long is a stall; None: offsets are not watched (stall.py).
    stall_seconds: float | None = None
