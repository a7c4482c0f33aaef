"""When a supervisor stops restarting a child that keeps dying: a crash loop is something a platform should see
(the process exits non-zero, the pod restarts and alerts), not something to hide by restarting for ever."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class CrashLoopLimit:
    """A slot that died ``restarts + 1`` times within ``window`` seconds is in a crash loop (``restarts``
    restarts did not help). ``restarts=0`` turns the limit off."""

    restarts: int = 5
    window: float = 300.0
    _deaths: dict[int, deque[float]] = field(default_factory=dict)

    def died(self, slot: int, now: float) -> str | None:
        """Count a death of ``slot`` at ``now``; the reason to give up, or None to restart it."""
        if self.restarts <= 0:
            return None
        deaths = self._deaths.setdefault(slot, deque())
        deaths.append(now)
        while deaths and now - deaths[0] > self.window:
            deaths.popleft()
        if len(deaths) <= self.restarts:
            return None
        return f"crash loop: died {len(deaths)} times within {self.window:g} s ({self.restarts} restarts did not help)"
