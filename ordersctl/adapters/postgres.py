"""PostgreSQL: connections, the pool, and the one place SQLSTATE classes become our error classes."""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ordersctl.config import PostgresSettings, Settings
from ordersctl.errors import (
    AccessDenied,
    DataRejected,
    OrdersError,
    QueryRefused,
    ServiceUnavailable,
    TransientError,
)

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
# Fatal (retrying cannot heal): invalid authorization specification (28000 role, 28P01 password), and the
# statement refused as unsupported (0A) or invalid (42: syntax error, undefined table or column, ...); of these,
# insufficient privilege (42501) is an access error.
_ACCESS_CLASSES = ("28",)
_ACCESS_STATES = ("42501",)
_REFUSED_CLASSES = ("0A", "42")
# A refused connection carries no SQLSTATE (libpq reports the server's FATAL message as text): these phrases of
# libpq and the server mean that the credentials, the certificate or pg_hba.conf refuse us, not an outage. An
# outage reads "connection refused", "timeout expired", "server closed the connection", "SSL SYSCALL error".
_ACCESS_PHRASES = (
    "authentication failed",  # password, SCRAM or SASL (PgBouncer's), for user "x"
    "no pg_hba.conf entry",
    "pg_hba.conf rejects connection",
    'role "',  # role "x" does not exist; `role "x" is not permitted to log in`
    "permission denied for database",
    "password is required but not provided",
    "fe_sendauth: no password supplied",
    "certificate verify failed",
    "does not match host name",
    "certificate has expired",
    "server does not support ssl",
    "ssl is not enabled on the server",
)


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
    if state[:2] in _ACCESS_CLASSES or state in _ACCESS_STATES or (not state and refused_access(exc)):
        return _access_denied(settings, exc)
    if state[:2] in _REFUSED_CLASSES:
        return QueryRefused(SERVICE, f"query refused ({state} {type(exc).__name__}: {_first_line(exc)})")
    if isinstance(exc, psycopg.OperationalError) and not state:
        return ServiceUnavailable(SERVICE, address(settings.dsn), _first_line(exc))
    if state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES or state == _READ_ONLY_STATE:
        return TransientError(f"{SERVICE} transient error {state}: {_first_line(exc)}")
    if is_data_error(exc):
        return DataRejected(f"{SERVICE} rejected a value ({state} {type(exc).__name__})")
    if isinstance(exc, psycopg.InterfaceError | psycopg.OperationalError):
        return ServiceUnavailable(SERVICE, address(settings.dsn), _first_line(exc))
    return None


def refused_access(exc: BaseException) -> bool:
    """A connection refused for its credentials, certificate or pg_hba.conf rules (no SQLSTATE on those)."""
    text = str(exc).lower()
    return any(phrase in text for phrase in _ACCESS_PHRASES)


def came_from_postgres(exc: BaseException) -> bool:
    """``exc`` is one of ours that ``translated`` made from a PostgreSQL or pool failure."""
    return isinstance(exc.__cause__, psycopg.Error | PoolTimeout)


def is_data_error(exc: BaseException) -> bool:
    """PostgreSQL rejected a value (data exception, integrity constraint violation): the order is bad, not the
    server, so retrying cannot help."""
    return isinstance(exc, psycopg.Error) and (exc.sqlstate or "")[:2] in _DATA_CLASSES


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


# Liveness: a peer that vanishes without a word (a host lost, a firewall dropping packets) is noticed within
# LIVENESS_SECONDS instead of TCP's retransmission limit (tcp_retries2, about 15 minutes). tcp_user_timeout ends a
# connection whose data stays unacknowledged that long (a query sent into the void); keepalives probe an idle one,
# or one waiting for an answer that never comes: idle 4 s, then 3 probes 2 s apart (Linux ends it at the user
# timeout, 10 s). A DSN's own parameter wins over each of these.
LIVENESS_SECONDS = 10


def liveness_params(settings: PostgresSettings) -> dict[str, Any]:
    """libpq's liveness parameters as ordersctl sets them: ``connect_timeout`` and TCP's user timeout and
    keepalives, all within ``LIVENESS_SECONDS``."""
    return {
        "connect_timeout": settings.connect_timeout,
        "tcp_user_timeout": LIVENESS_SECONDS * 1000,
        "keepalives": 1,
        "keepalives_idle": 4,
        "keepalives_interval": 2,
        "keepalives_count": 3,
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
    """One connection; an unreachable server becomes ServiceUnavailable with the address, refused credentials
    AccessDenied."""
    try:
        return psycopg.connect(settings.dsn, autocommit=autocommit, **connect_kwargs(settings))
    except psycopg.Error as exc:
        if refused_access(exc):
            raise _access_denied(settings, exc) from None
        raise ServiceUnavailable(SERVICE, address(settings.dsn), _first_line(exc)) from None


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
    """Raise AccessDenied if PostgreSQL refuses our credentials; an outage is not this check's business (a server
    may start while PostgreSQL is down and serve once it is back)."""
    with suppress(ServiceUnavailable):
        connect(settings).close()


def _access_denied(settings: PostgresSettings, exc: BaseException) -> AccessDenied:
    return AccessDenied(SERVICE, f"access denied at {address(settings.dsn)} ({_first_line(exc)})")


def check_alive(conn: psycopg.Connection[Any]) -> None:
    """The pool's check of a connection it hands out: a round trip only when its socket has something to say (the
    server's close, an error that keepalives or ``tcp_user_timeout`` left after a lost peer, a notice); a quiet one
    is handed out as it is. ``ConnectionPool.check_connection`` (a round trip on every checkout) cost 57 µs more
    per checkout and ``SELECT 1`` than no check (best of 5 rounds of 1,000 on the local stack: 87 µs, 144 with
    it), this one 3 µs. A connection to a peer lost without a word stays quiet until its keepalives give up
    (``LIVENESS_SECONDS``); a statement sent on it meanwhile fails within the same bound, and is retried."""
    poller = select.poll()
    poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


def make_pool(settings: PostgresSettings) -> ConnectionPool:
    """A pool that opens lazily and checks connections, so it heals after a PostgreSQL restart."""
    pool: ConnectionPool = ConnectionPool(
        settings.dsn,
        min_size=1,
        max_size=settings.pool_size,
        kwargs=connect_kwargs(settings),
        check=check_alive,
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
    except PoolTimeout as exc:
        raise why_no_connection(settings) from exc
    except psycopg.Error as exc:
        mapped = classify(exc, settings)
        if mapped is None:
            raise
        raise mapped from exc
