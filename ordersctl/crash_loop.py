"""When a supervisor stops restarting a child that keeps dying: a crash loop is something a platform should see
(the process exits non-zero, the pod restarts and alerts), not something to hide by restarting for ever."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class CrashLoopLimit:
    """A slot that died ``restarts + 1`` times within ``window`` seconds, each time less than ``healthy_after``
    seconds after its start, is in a crash loop (``restarts`` restarts did not help). A child that had run longer
    was killed (an operator, the chaos suite, the OOM killer) or met something rare: it is restarted without
    counting. ``restarts=0`` turns the limit off."""

    restarts: int = 5
    window: float = 300.0
    healthy_after: float = 30.0
    _deaths: dict[int, deque[float]] = field(default_factory=dict)

    def died(self, slot: int, now: float, lived: float = 0.0) -> str | None:
        """Count a death of ``slot`` at ``now``, ``lived`` seconds after its start; the reason to give up, or None
        to restart it."""
        if self.restarts <= 0 or lived >= self.healthy_after:
            return None
        deaths = self._deaths.setdefault(slot, deque())
        deaths.append(now)
        while deaths and now - deaths[0] > self.window:
            deaths.popleft()
        if len(deaths) <= self.restarts:
            return None
        return (
            f"crash loop: died {len(deaths)} times within {self.window:g} s, each within {self.healthy_after:g} s of"
            f" its start ({self.restarts} restarts did not help)"
        )
