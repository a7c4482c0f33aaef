"""one_connection: the sections of one status read share one PostgreSQL connection (issue #24), and a section
that fails leaves the next one a fresh connection, as a connection of its own would."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, cast

import pytest

from ordersctl.observe.sources import Connect, one_connection


class FakeConnection:
    def __init__(self, number: int) -> None:
        self.number = number
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Opener:
    """A ``connect`` that counts the connections it opens."""

    def __init__(self) -> None:
        self.opened: list[FakeConnection] = []

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Any]:
        conn = FakeConnection(len(self.opened))
        self.opened.append(conn)
        with contextlib.closing(conn):
            yield conn


def _connect(opener: Opener) -> Connect:
    return cast(Connect, opener)


def test_uses_share_one_connection_closed_at_the_end() -> None:
    opener = Opener()
    with one_connection(_connect(opener)) as connect:
        assert opener.opened == []  # nothing is opened before it is used
        with connect() as first:
            pass
        with connect() as second:
            pass
        assert first is second and not first.closed
    assert len(opener.opened) == 1 and opener.opened[0].closed


def test_a_use_that_fails_closes_it_and_the_next_use_opens_another() -> None:
    opener = Opener()
    with one_connection(_connect(opener)) as connect:
        with pytest.raises(RuntimeError), connect():
            raise RuntimeError("query failed")
        assert opener.opened[0].closed
        with connect() as conn:
            assert conn is not None and not conn.closed
    assert [c.closed for c in opener.opened] == [True, True]
