"""Which pooled connection the pool may hand out: after a failover, none still pointed at a dead or demoted host.

A DSN that asks for a writable server (``target_session_attrs=read-write`` or ``primary``, as with several hosts
after a failover) makes libpq pick the primary when it connects; a connection already in the pool is checked
again each time it is lent: a round trip (a dead host's connection fails it, within the connection's liveness
bound) and the server's own report of whether it still accepts writes (``in_hot_standby`` and
``default_transaction_read_only``, which PostgreSQL 14+ sends to every session when they change). A connection
that fails either is closed and the pool connects again, to whichever host is primary now."""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool

from ordersctl.config import PostgresSettings

_WRITABLE_ATTRS = ("read-write", "primary")


def wants_writable(dsn: str) -> bool:
    """The DSN asks libpq for a server that accepts writes."""
    try:
        attrs = conninfo.conninfo_to_dict(dsn).get("target_session_attrs")
    except psycopg.ProgrammingError:
        return False
    return str(attrs or "") in _WRITABLE_ATTRS


def is_read_only(conn: psycopg.Connection[Any]) -> bool:
    """The server said (in its last report to this session) that it is a standby or read-only by default."""
    status = conn.info.parameter_status
    return status("in_hot_standby") == "on" or status("default_transaction_read_only") == "on"


def check_alive(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it hands out: a round trip only when its socket has something to say (the
    server's close, an error that keepalives or ``tcp_user_timeout`` left after a lost peer, a notice); a quiet one
    is handed out as it is, since a round trip on every checkout costs more than the checkout (docs/performance.md).
    A connection to a peer lost without a word stays quiet until its keepalives give up (``LIVENESS_SECONDS`` in
    adapters/postgres.py); a statement sent on it meanwhile fails within the same bound, and is retried."""
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


def pool_check(settings: PostgresSettings) -> Callable[[psycopg.Connection[Any]], None]:
    """The pool's ``check``: raises for a connection the pool must not lend (the pool closes it). A DSN that asks
    for a writable server pays a round trip per lending (a demoted primary says so only when asked); any other
    only when its socket has something to say (``check_alive``)."""
    if not wants_writable(settings.dsn):
        return check_alive

    def check(conn: psycopg.Connection[Any]) -> None:
        ConnectionPool.check_connection(conn)  # a round trip, which also brings the server's latest reports
        if is_read_only(conn):
            raise psycopg.OperationalError(
                f"{conn.info.host}:{conn.info.port} no longer accepts writes (a demoted primary?): connection retired"
            )

    return check
