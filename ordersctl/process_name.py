"""A process's own name (``comm``: what ps -o comm and top show), so that processes forked from one command line
are told apart: consume's workers, the zygote they are forked from."""

from __future__ import annotations

import ctypes
import sys

_PR_SET_NAME = 15  # linux/prctl.h
_COMM_BYTES = 15  # the kernel keeps 15 bytes of a name
WORKER_PREFIX = "ordersctl-w"
ZYGOTE_NAME = "ordersctl-zygote"


def worker_name(worker_id: int) -> str:
    """consume's worker ``worker_id``: its process's name, and what ps and top show."""
    return f"{WORKER_PREFIX}{worker_id}"


def kernel_name(name: str) -> str:
    """What /proc/<pid>/comm reads for a process that set ``name``: the zygote's is "ordersctl-zygot"."""
    return name.encode()[:_COMM_BYTES].decode(errors="ignore")


def prctl(option: int, value: int | bytes) -> bool:
    """Linux's prctl(2) with one argument; False where it is refused or there is none."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(option, value, 0, 0, 0) == 0)


def set_name(name: str) -> None:
    prctl(_PR_SET_NAME, kernel_name(name).encode())
