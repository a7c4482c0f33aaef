"""A process's own name (``comm``: what ps -o comm and top show), so that processes forked from one command line
are told apart: consume's workers, the zygote they are forked from."""

from __future__ import annotations

import ctypes
import sys

_PR_SET_NAME = 15  # linux/prctl.h


def prctl(option: int, value: int | bytes) -> bool:
    """Linux's prctl(2) with one argument; False where it is refused or there is none."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(option, value, 0, 0, 0) == 0)


def set_name(name: str) -> None:
    prctl(_PR_SET_NAME, name.encode()[:15])  # the kernel keeps 15 bytes
