"""The unit tier needs no service: it passes with the stack down (``make unit``). A test that needs the real
PostgreSQL, Redis or Kafka belongs in tests/integration; this keeps it from slipping in here."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections.abc import Iterator

import pytest

from ordersctl import logs


@pytest.fixture(scope="session")
def services() -> None:
    """Every fixture of the real stack (a database, topics, settings for them) depends on this one."""
    pytest.fail("a unit test must not need the stack: move it to tests/integration", pytrace=False)


@pytest.fixture(autouse=True)
def process_logging_restored() -> Iterator[None]:
    """A command run in this process sets logging up as a process does (root handler, hooks, its identity); the
    next test starts from what was there before."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, dataclasses.replace(logs.identity), sys.excepthook, threading.excepthook,
             sys.unraisablehook, sys.stderr)  # fmt: skip
    yield
    root.handlers[:], root.level = saved[0], saved[1]
    logs.identity.process, logs.identity.worker, logs.identity.json = (saved[2].process, saved[2].worker, saved[2].json)
    sys.excepthook, threading.excepthook, sys.unraisablehook, sys.stderr = saved[3], saved[4], saved[5], saved[6]
    logging.captureWarnings(False)
