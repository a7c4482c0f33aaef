"""PostgreSQL: connections, their liveness and session settings, the pool; their failures come out as our error
classes (adapters/postgres_errors.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ordersctl.adapters.postgres_check import pool_check
from ordersctl.adapters.postgres_errors import SERVICE, access_denied, address, classify, first_line, refused_access
from ordersctl.config import PostgresSettings
from ordersctl.errors import (
    AccessDenied,
    OrdersError,
    ServiceUnavailable,
)


def session_settings(settings: PostgresSettings) -> dict[str, str]:
    """Our settings of every session: the timeouts, no JIT, and the server's end of the liveness."""
    # Every statement here takes milliseconds; the JIT would spend far longer compiling one (it did, on the outbox
    # insert of a fresh table whose statistics overestimate it: docs/performance.md).
    return {
        "jit": "off",
        "statement_timeout": str(settings.statement_timeout_ms),
        "lock_timeout": str(settings.lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_session_timeout_ms),
        **SERVER_LIVENESS,
    }


def session_options(settings: PostgresSettings, dsn_options: str = "") -> str:
    """Our session settings as startup options, so that every connection (pooled or not) has them; but the
    server's liveness settings ``dsn_options`` (the DSN's own) already sets."""
    return " ".join(
        f"-c {name}={value}"
        for name, value in session_settings(settings).items()
        if not (name in SERVER_LIVENESS and f"{name}=" in dsn_options)
    )


# Liveness: a peer that vanishes without a word (a host lost, a firewall dropping packets) is noticed within
# LIVENESS_SECONDS instead of TCP's retransmission limit (tcp_retries2, about 15 minutes). tcp_user_timeout ends a
# connection whose data stays unacknowledged that long (a query sent into the void); keepalives probe an idle one,
# or one waiting for an answer that never comes: idle 4 s, then 3 probes 2 s apart (Linux ends it at the user
# timeout, 10 s). A DSN's own parameter wins over each of these.
LIVENESS_SECONDS = 10
KEEPALIVES_IDLE, KEEPALIVES_INTERVAL, KEEPALIVES_COUNT = 4, 2, 3
# The server's end of our sessions gets the same: a backend whose client vanished behind a partition (its close
# lost on the way) waits for it until TCP gives up, which with no data to send is never: in a COPY it keeps its
# transaction and locks, and DROP DATABASE ... WITH (FORCE) waited for one (a CI run, after a chaos partition).
# Settings any user may set (ignored on a Unix socket); one the DSN's ``options`` sets wins.
SERVER_LIVENESS = {
    "tcp_keepalives_idle": str(KEEPALIVES_IDLE),
    "tcp_keepalives_interval": str(KEEPALIVES_INTERVAL),
    "tcp_keepalives_count": str(KEEPALIVES_COUNT),
    "tcp_user_timeout": str(LIVENESS_SECONDS * 1000),
}


def liveness_params(settings: PostgresSettings) -> dict[str, Any]:
    """libpq's liveness parameters as ordersctl sets them: ``connect_timeout`` and TCP's user timeout and
    keepalives, all within ``LIVENESS_SECONDS``."""
    return {
        "connect_timeout": settings.connect_timeout,
        "tcp_user_timeout": LIVENESS_SECONDS * 1000,
        "keepalives": 1,
        "keepalives_idle": KEEPALIVES_IDLE,
        "keepalives_interval": KEEPALIVES_INTERVAL,
        "keepalives_count": KEEPALIVES_COUNT,
    }


def connect_kwargs(settings: PostgresSettings) -> dict[str, Any]:
    """Connection parameters besides the DSN: the liveness parameters the DSN does not set (``liveness_params``;
    ``postgres.connect_timeout``, when set, wins over the DSN's), application name, and our session settings after
    the DSN's own. Behind a transaction pooler (``pooler = "transaction"``) each transaction may run on another server
    session: no startup options (PgBouncer refuses them; the role carries the settings, see ``set_role_defaults``)
    and no prepared statements (the next transaction's session would not have them)."""
    try:
        own = conninfo.conninfo_to_dict(settings.dsn)
    except psycopg.ProgrammingError:
        own = {}  # psycopg reports the bad DSN itself on connect
    kwargs: dict[str, Any] = {name: value for name, value in liveness_params(settings).items() if name not in own}
    if "connect_timeout" in settings.model_fields_set:
        kwargs["connect_timeout"] = settings.connect_timeout  # set on purpose: it wins over the DSN's
    if "application_name" not in own:
        kwargs["application_name"] = settings.application_name
    if settings.pooler == "transaction":
        kwargs["prepare_threshold"] = None
    else:
        dsn_options = str(own.get("options") or "")
        kwargs["options"] = f"{dsn_options} {session_options(settings, dsn_options)}".strip()
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


def connect(settings: PostgresSettings, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    """One connection; an unreachable server becomes ServiceUnavailable with the address, refused credentials
    AccessDenied."""
    try:
        return psycopg.connect(settings.dsn, autocommit=autocommit, **connect_kwargs(settings))
    except psycopg.Error as exc:
        if refused_access(exc):
            raise access_denied(settings, exc) from None
        raise ServiceUnavailable(SERVICE, address(settings.dsn), first_line(exc)) from None


class _Probes:
    """The last direct connection attempt's verdict per DSN, reused for ``PROBE_EVERY_SECONDS``: in an outage every
    request of a busy server times out on the pool, and one attempt each would storm the server coming back."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, tuple[float, OrdersError]] = {}

    def verdict(self, settings: PostgresSettings) -> OrdersError:
        with self._lock:
            at, verdict = self._last.get(settings.dsn, (-PROBE_EVERY_SECONDS, None))
            if verdict is not None and time.monotonic() - at < PROBE_EVERY_SECONDS:
                return _fresh(verdict)  # each raise its own instance (its own cause and traceback)
        try:
            connect(settings).close()
            verdict = ServiceUnavailable(SERVICE, address(settings.dsn), "no connection available")
        except OrdersError as exc:
            verdict = exc
        with self._lock:
            self._last[settings.dsn] = (time.monotonic(), verdict)
        return verdict


def _fresh(error: OrdersError) -> OrdersError:
    if isinstance(error, AccessDenied):
        return AccessDenied(error.service, error.cause)
    if isinstance(error, ServiceUnavailable):
        return ServiceUnavailable(error.service, error.address, error.reason)
    return error


PROBE_EVERY_SECONDS = 5.0
_probes = _Probes()


def why_no_connection(settings: PostgresSettings) -> OrdersError:
    """The pool timed out (it retries connecting in the background and keeps the cause to itself): a direct
    attempt (at most one every PROBE_EVERY_SECONDS) tells an outage (ServiceUnavailable) from refused
    credentials (AccessDenied)."""
    return _probes.verdict(settings)


def check_access(settings: PostgresSettings) -> None:
    """Raise AccessDenied if PostgreSQL refuses our credentials, on the DSN and on the read DSN when there is one; an
    outage is not this check's business (a server may start while PostgreSQL is down and serve once it is back)."""
    for each in (settings, settings.for_reads()) if settings.read_dsn else (settings,):
        with suppress(ServiceUnavailable):
            connect(each).close()


def make_pool(settings: PostgresSettings, name: str = "ordersctl") -> ConnectionPool:
    """A pool that opens lazily and checks connections, so it heals after a PostgreSQL restart."""
    pool: ConnectionPool = ConnectionPool(
        settings.dsn,
        min_size=1,
        max_size=settings.pool_size,
        kwargs=connect_kwargs(settings),
        check=pool_check(settings),
        timeout=settings.connect_timeout * 2,
        # While a client waits for a connection (up to `timeout`), keep trying to connect (backoff 1, 2, 4 s): a
        # failover or restart that ends meanwhile is noticed by the next attempt, not after the wait. (0 would give up
        # after the second attempt, and the waiting client wait out its timeout for nothing.) After that the pool
        # connects again at the next request: outages are survived without a restart.
        reconnect_timeout=settings.connect_timeout * 2,
        open=False,
        name=name,
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
    except PoolTimeout as exc:
        raise why_no_connection(settings) from exc
    except psycopg.Error as exc:
        mapped = classify(exc, settings)
        if mapped is None:
            raise
        raise mapped from exc
