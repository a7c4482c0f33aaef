"""The unit tier needs no service: it passes with the stack down (``make unit``). A test that needs the real
PostgreSQL, Redis or Kafka belongs in tests/integration; this keeps it from slipping in here."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def services() -> None:
    """Every fixture of the real stack (a database, topics, settings for them) depends on this one."""
    pytest.fail("a unit test must not need the stack: move it to tests/integration", pytrace=False)
