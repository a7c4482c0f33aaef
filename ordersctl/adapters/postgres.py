"""PostgreSQL: connections, the pool, and the one place SQLSTATE classes become our error classes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ordersctl.adapters import citus
from ordersctl.config import PostgresSettings, Settings
from ordersctl.errors import DataRejected, OrdersError, ServiceUnavailable, TransientError

SERVICE = "PostgreSQL"

# SQLSTATE classes that mean "this value is bad" (data exception, integrity constraint violation).
_DATA_CLASSES = ("22", "23")
# Classes that mean "try again": connection exception, insufficient resources, operator intervention
# (admin shutdown, crash recovery, statement_timeout), transaction rollback (serialization failure,
# deadlock), system error.
_TRANSIENT_CLASSES = ("08", "40", "53", "57", "58")
# read_only_sql_transaction: a write reached a server that is a read-only standby, as after a failover until the
# address (DNS, PgBouncer, a proxy) points at the new primary: transient.
_READ_ONLY_STATE = "25006"
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
    if state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES or state == _READ_ONLY_STATE:
        return TransientError(f"{SERVICE} transient error {state}: {_first_line(exc)}")
    if is_data_error(exc):
        return DataRejected(f"{SERVICE} rejected a value ({state} {type(exc).__name__})")
    if isinstance(exc, psycopg.InterfaceError | psycopg.OperationalError):
        return ServiceUnavailable(SERVICE, address(settings.dsn), _first_line(exc))
    return None


def is_data_error(exc: BaseException) -> bool:
    """PostgreSQL rejected a value (data exception, integrity constraint violation): the order is bad, not the
    server, so retrying cannot help."""
    if not isinstance(exc, psycopg.Error):
        return False
    return (exc.sqlstate or "")[:2] in _DATA_CLASSES or citus.worker_copy_error(exc) == "data"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def session_settings(settings: PostgresSettings) -> dict[str, str]:
    """Our settings of every session: the timeouts, and no JIT."""
    # Every statement here takes milliseconds; the JIT would spend hundreds compiling one (it did: 330 ms per
    # outbox insert of a batch, on a fresh table whose statistics overestimate it).
    return {
        "jit": "off",
        "statement_timeout": str(settings.statement_timeout_ms),
        "lock_timeout": str(settings.lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_session_timeout_ms),
    }


def session_options(settings: PostgresSettings) -> str:
    """Our session settings as startup options, so that every connection (pooled or not) has them."""
    return " ".join(f"-c {name}={value}" for name, value in session_settings(settings).items())


def connect_kwargs(settings: PostgresSettings) -> dict[str, Any]:
    """Connection parameters besides the DSN: timeout, application name, and our session settings after the DSN's
    own. Behind a transaction pooler (``pooler = "transaction"``) each transaction may run on another server
    session: no startup options (PgBouncer refuses them; the role carries the settings, see ``set_role_defaults``)
    and no prepared statements (the next transaction's session would not have them)."""
    try:
        own = conninfo.conninfo_to_dict(settings.dsn)
    except psycopg.ProgrammingError:
        own = {}  # psycopg reports the bad DSN itself on connect
    kwargs: dict[str, Any] = {"connect_timeout": settings.connect_timeout}
    if "application_name" not in own:
        kwargs["application_name"] = settings.application_name
    if settings.pooler == "transaction":
        kwargs["prepare_threshold"] = None
    else:
        kwargs["options"] = f"{own.get('options') or ''} {session_options(settings)}".strip()
    return kwargs


def set_role_defaults(conn: psycopg.Connection[Any], settings: PostgresSettings) -> str:
    """Our session settings as the connected role's defaults in its database, which every new session of it starts
    with, also the ones a transaction pooler opens. A role may set its own defaults (no privilege needed). Returns
    where, e.g. ``ordersctl in database orders``."""
    user, database = conn.execute("SELECT current_user, current_database()").fetchone() or ("", "")
    for name, value in session_settings(settings).items():
        conn.execute(
            sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} SET {} = {}").format(
                sql.Identifier(database), sql.Identifier(name), sql.Literal(value)
            )
        )
    return f"{user} in database {database}"


def for_process(settings: Settings, name: str) -> Settings:
    """These settings with ``postgres.application_name`` = ``name`` (ordersctl-serve, ordersctl-consume-w1, ...),
    unless the user chose one."""
    if "application_name" in settings.postgres.model_fields_set:
        return settings
    postgres = settings.postgres.model_copy(update={"application_name": name})
    return settings.model_copy(update={"postgres": postgres})


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
