"""The one place PostgreSQL's failures become our error classes: by SQLSTATE class, or by libpq's words where a
refused connection carries none. Retry, dead letter or stop is then decided by class (ordersctl/errors.py)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import conninfo
from psycopg_pool import PoolTimeout

from ordersctl.adapters import citus
from ordersctl.config import PostgresSettings
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
    """host:port/dbname of a DSN, without user or password (hosts separated by commas)."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<invalid DSN>"
    where = ",".join(f"{host}:{port}" for host, port in _host_ports(params))
    return f"{where}/{params.get('dbname') or ''}"


def host_ports(dsn: str) -> list[tuple[str, str]]:
    """(host, port) of each host of a DSN, in its order; empty for a DSN libpq cannot parse."""
    try:
        return _host_ports(conninfo.conninfo_to_dict(dsn))
    except psycopg.ProgrammingError:
        return []


def _host_ports(params: dict[str, Any]) -> list[tuple[str, str]]:
    # Several hosts (a primary and its standbys): each with its own port, or all with the one port given.
    hosts = str(params.get("host") or "localhost").split(",")
    ports = str(params.get("port") or 5432).split(",")
    return [(host, ports[i] if len(ports) == len(hosts) else ports[0]) for i, host in enumerate(hosts)]


def classify(exc: BaseException, settings: PostgresSettings) -> OrdersError | None:
    """Map a psycopg error to Transient/Poison; None for an error that is a bug (let it crash)."""
    if isinstance(exc, PoolTimeout):
        return ServiceUnavailable(SERVICE, address(settings.dsn), "no connection available")
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate or ""
    if _is_access_error(state, exc):
        return access_denied(settings, exc)
    if state[:2] in _REFUSED_CLASSES:
        return QueryRefused(SERVICE, f"query refused ({state} {type(exc).__name__}: {first_line(exc)})")
    if isinstance(exc, psycopg.OperationalError) and not state:
        return ServiceUnavailable(SERVICE, address(settings.dsn), first_line(exc))
    if _is_transient(state):
        return TransientError(f"{SERVICE} transient error {state}: {first_line(exc)}")
    if is_data_error(exc):
        return DataRejected(f"{SERVICE} rejected a value ({state} {type(exc).__name__})")
    if isinstance(exc, psycopg.InterfaceError | psycopg.OperationalError):
        return ServiceUnavailable(SERVICE, address(settings.dsn), first_line(exc))
    return None


def _is_access_error(state: str, exc: BaseException) -> bool:
    return state[:2] in _ACCESS_CLASSES or state in _ACCESS_STATES or (not state and refused_access(exc))


def _is_transient(state: str) -> bool:
    return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES or state == _READ_ONLY_STATE


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
    if not isinstance(exc, psycopg.Error):
        return False
    return (exc.sqlstate or "")[:2] in _DATA_CLASSES or citus.worker_copy_error(exc) == "data"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def access_denied(settings: PostgresSettings, exc: BaseException) -> AccessDenied:
    return AccessDenied(SERVICE, f"access denied at {address(settings.dsn)} ({first_line(exc)})")
