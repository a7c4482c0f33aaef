"""PostgreSQL: connections, the pool, and the one place SQLSTATE classes become our error classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ordersctl.config import PostgresSettings
from ordersctl.errors import DataRejected, OrdersError, ServiceUnavailable, TransientError

SERVICE = "PostgreSQL"

# SQLSTATE classes that mean "this value is bad" (data exception, integrity constraint violation).
_DATA_CLASSES = ("22", "23")
# Classes that mean "try again": connection exception, insufficient resources, operator intervention
# (admin shutdown, crash recovery, statement_timeout), transaction rollback (serialization failure,
# deadlock), system error.
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
# Single states of other classes that mean the same: lock_timeout (lock_not_available) and
# idle_in_transaction_session_timeout, which end a wait or a session, not a bad value.
_TRANSIENT_STATES = ("55P03", "25P03")


def address(dsn: str) -> str:
    """host:port/dbname of a DSN, without user or password."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<invalid DSN>"
    host = str(params.get("host") or "localhost")
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


def classify(exc: BaseException, settings: PostgresSettings) -> OrdersError | None:
    """Map a psycopg error to Transient/Poison; None for an error that is a bug (let it crash)."""
    if isinstance(exc, PoolTimeout):
        return ServiceUnavailable(SERVICE, address(settings.dsn), "no connection available")
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    if isinstance(exc, psycopg.OperationalError) and not state:
        return ServiceUnavailable(SERVICE, address(settings.dsn), _first_line(exc))
    if state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES:
        return TransientError(f"{SERVICE} transient error {state}: {_first_line(exc)}")
    if is_data_error(exc):
        return DataRejected(f"{SERVICE} rejected a value ({state} {type(exc).__name__})")
    if isinstance(exc, psycopg.InterfaceError | psycopg.OperationalError):
        return ServiceUnavailable(SERVICE, address(settings.dsn), _first_line(exc))
    return None


def is_data_error(exc: BaseException) -> bool:
    """PostgreSQL rejected a value (data exception, integrity constraint violation): the order is bad, not the
    server, so retrying cannot help."""
    return isinstance(exc, psycopg.Error) and (exc.sqlstate or "")[:2] in _DATA_CLASSES


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def session_options(settings: PostgresSettings) -> str:
    """Our session settings, sent as startup options so that every connection (pooled or not) has them."""
    # Every statement here takes milliseconds; the JIT would spend hundreds compiling one (it did: 330 ms per
    # outbox insert of a batch, on a fresh table whose statistics overestimate it).
    return (
        f"-c jit=off -c statement_timeout={settings.statement_timeout_ms} -c lock_timeout={settings.lock_timeout_ms}"
        f" -c idle_in_transaction_session_timeout={settings.idle_in_transaction_session_timeout_ms}"
    )


def connect_kwargs(settings: PostgresSettings) -> dict[str, Any]:
    """Connection parameters besides the DSN: timeout, and our session settings after the DSN's own."""
    try:
        own = str(conninfo.conninfo_to_dict(settings.dsn).get("options") or "")
    except psycopg.ProgrammingError:
        own = ""  # psycopg reports the bad DSN itself on connect
    return {"connect_timeout": settings.connect_timeout, "options": f"{own} {session_options(settings)}".strip()}


def connect(settings: PostgresSettings, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """One connection; an unreachable server becomes ServiceUnavailable with the address."""
    try:
        return psycopg.connect(settings.dsn, autocommit=autocommit, **connect_kwargs(settings))
    except psycopg.Error as exc:
        raise ServiceUnavailable(SERVICE, address(settings.dsn), _first_line(exc)) from None


def make_pool(settings: PostgresSettings) -> ConnectionPool:
    """A pool that opens lazily and checks connections, so it heals after a PostgreSQL restart."""
    pool: ConnectionPool = ConnectionPool(
        settings.dsn,
        min_size=1,
        max_size=settings.pool_size,
        kwargs=connect_kwargs(settings),
        check=ConnectionPool.check_connection,
        timeout=settings.connect_timeout * 2,
        reconnect_timeout=0,  # never give up reconnecting: outages are survived without a restart
        open=False,
        name="ordersctl",
    )
    pool.open(wait=False)
    return pool


@contextmanager
def pooled_connection(
    pool: ConnectionPool, settings: PostgresSettings, timeout: float | None = None
) -> Iterator[psycopg.Connection[Any]]:
    """A connection of ``pool`` whose errors, and the pool's own, are translated (``translated``)."""
    with translated(settings), pool.connection(timeout=timeout) as conn:
        yield conn


@contextmanager
def translated(settings: PostgresSettings) -> Iterator[None]:
    """Re-raise psycopg errors as our error classes where they have one."""
    try:
        yield
    except (psycopg.Error, PoolTimeout) as exc:
        mapped = classify(exc, settings)
        if mapped is None:
            raise
        raise mapped from exc
