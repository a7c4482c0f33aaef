"""The PostgreSQL nodes of a multi-host DSN (an HA pair such as pg_auto_failover's, reached with
``target_session_attrs=read-write``): which answers, which is the primary, how many standbys it replicates to
synchronously. Each node is asked directly, on its own connection; a DSN with one host has no nodes to show."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import conninfo
from rich.console import RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ordersctl.adapters import postgres as pg_adapter
from ordersctl.adapters.postgres_errors import host_ports
from ordersctl.config import PostgresSettings
from ordersctl.errors import ServiceUnavailable

# Asking a node that does not answer costs its connect timeout: at most this long each.
NODE_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class NodeCheck:
    """One node: up or down; primary or standby; on the primary, its synchronous standbys."""

    address: str
    up: bool
    role: str | None = None  # primary, standby; None when down
    sync_standbys: int | None = None  # on the primary: standbys in sync or quorum state
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"address": self.address, "up": self.up, "role": self.role, "sync_standbys": self.sync_standbys,
                "error": self.error}  # fmt: skip


def node_addresses(dsn: str) -> list[tuple[str, str]]:
    """(host, port) of each host of the DSN; empty for a DSN with a single host (or one libpq cannot parse)."""
    nodes = host_ports(dsn)
    return nodes if len(nodes) > 1 else []


def _ask(settings: PostgresSettings, host: str, port: str) -> NodeCheck:
    address = f"{host}:{port}"
    dsn = conninfo.make_conninfo(settings.dsn, host=host, port=port, target_session_attrs="any")
    one = settings.model_copy(
        update={"dsn": dsn, "connect_timeout": min(settings.connect_timeout, NODE_TIMEOUT_SECONDS)}
    )
    try:
        with contextlib.closing(pg_adapter.connect(one, autocommit=True)) as conn:
            row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
            if row is not None and row[0]:
                return NodeCheck(address, True, "standby")
            sync = conn.execute(
                "SELECT count(*)::int FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum')"
            ).fetchone()
            count = sync[0] if sync else 0
            assert isinstance(count, int)
            return NodeCheck(address, True, "primary", count)
    except ServiceUnavailable as exc:
        return NodeCheck(address, False, error=exc.reason or str(exc))
    except psycopg.Error as exc:
        return NodeCheck(address, False, error=type(exc).__name__)


def check_nodes(settings: PostgresSettings) -> tuple[NodeCheck, ...]:
    """Each node of a multi-host DSN, in the DSN's order; () for a single host."""
    return tuple(_ask(settings, host, port) for host, port in node_addresses(settings.dsn))


def nodes_view(nodes: tuple[NodeCheck, ...]) -> list[RenderableType]:
    """The nodes as a table for people (nothing for a single host)."""
    if not nodes:
        return []
    table = Table("node", "state", "role", "synchronous standbys", "error")
    for node in nodes:
        state = "[green]up[/green]" if node.up else "[red]down[/red]"
        role = f"[bold]{node.role}[/bold]" if node.role == "primary" else node.role or "-"
        sync = "-" if node.sync_standbys is None else str(node.sync_standbys)
        table.add_row(escape(node.address), state, role, sync, Text(node.error or ""))
    return [Text("PostgreSQL nodes", style="bold"), table]
