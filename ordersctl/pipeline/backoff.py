"""Exponential backoff with full jitter: spreads retries of many workers after a shared outage."""

from __future__ import annotations

import os
import random

# One generator per process, seeded once: a worker builds a Backoff for every store and every commit (in case they
# fail), and seeding a new ``random.Random()`` reads the OS's entropy and fills its state, tens of microseconds.
_JITTER = random.Random()
if hasattr(os, "register_at_fork"):
    # Workers forked from one zygote would otherwise draw the same delays and retry in step after a shared outage.
    os.register_at_fork(after_in_child=_JITTER.seed)


class Backoff:
    """``next()`` gives the next delay: uniform in [0, min(cap, initial * 2**attempt)]."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0
        self._rng = rng or _JITTER

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * (2 ** min(self.attempt, 30)))
        self.attempt += 1
        return max(self.initial / 2, self._rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0
