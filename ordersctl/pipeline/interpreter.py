"""Interpreter settings for a worker process."""

from __future__ import annotations

import gc
import sys


def tune_interpreter() -> None:
    """Process-wide settings for a worker process, whose hot loop allocates a few hundred thousand objects a second."""
    # The store and relay threads mostly wait on sockets; with the default 5 ms switch interval each of
    # their wake-ups waits behind the CPU-bound decoding of the main thread (a GIL convoy).
    sys.setswitchinterval(0.0005)
    # Decoding a batch makes ~20 container objects per order that live until the batch is committed. With the
    # default threshold (700) the cyclic collector keeps re-scanning the live batches (docs/performance.md:
    # what that cost). Nearly all of it is freed by
    # reference counting, so collect rarely: after 100,000 net new objects, and never re-scan what was
    # imported at start-up (frozen). Cyclic garbage is still collected, just in larger, rarer passes.
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)
