"""``ordersctl db``: database schema."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.output import info, print_json

if TYPE_CHECKING:
    from ordersctl.adapters.citus import TableDistribution
    from ordersctl.adapters.migrations import MigrationState

app = typer.Typer(help="Database schema.\n\nExample: ordersctl db migrate --status", no_args_is_help=True)


@app.command()
def migrate(
    ctx: typer.Context,
    status: Annotated[bool, typer.Option("--status", help="Show applied and pending; change nothing.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be applied; apply nothing.")] = False,
    directory: Annotated[Path | None, typer.Option(help="Folder of NNNN_name.sql files.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Apply pending SQL migrations, each in its own transaction under a transaction-scoped advisory lock.

    Example: ordersctl db migrate            (then: ordersctl db migrate --status)
    """
    from ordersctl.adapters.migrations import Migrator, default_directory, load
    from ordersctl.adapters.postgres import set_role_defaults
    from ordersctl.adapters.postgres_errors import address

    settings = app_context(ctx).settings
    migrations = load(directory or default_directory())
    where = address(settings.postgres.dsn)
    with app_context(ctx).runtime.pg_connect(autocommit=True) as conn:
        migrator = Migrator(conn, migrations)
        if status or dry_run:
            layout = migrator.layout() if status else []
            _show_status(migrator.status(), where, dry_run=dry_run, everything=status, as_json=as_json, layout=layout)
            return
        applied = migrator.apply()
        # Behind a transaction pooler no session carries our settings from its start: the role does.
        role = set_role_defaults(conn, settings.postgres) if settings.postgres.pooler == "transaction" else None
    if as_json:
        done = {"database": where, "applied": [f"{m.version}_{m.name}" for m in applied]}
        done |= {"distributed": migrator.distributed} if migrator.distributed else {}
        print_json(done | ({"role_defaults": role} if role else {}))
        return
    for m in applied:
        info(f"applied {m.version}_{m.name}")
    for table in migrator.distributed:
        info(f"distributed {table} by order_uid (Citus)")
    if role:
        info(f"session settings (timeouts, jit) set as the defaults of role {role}")
    info(f"{where}: up to date" + (f" ({len(applied)} applied)" if applied else ""))


def _show_status(
    states: list[MigrationState],
    where: str,
    *,
    dry_run: bool,
    everything: bool,
    as_json: bool,
    layout: list[TableDistribution],
) -> None:
    """``--status`` lists every migration, ``--dry-run`` only what would be applied; on Citus, ``--status``
    also tells how each table is distributed (plain PostgreSQL has only local tables: nothing to tell)."""
    rows = [{"version": s.migration.version, "name": s.migration.name, "applied": s.applied} for s in states]
    if not any(t.kind != "local" for t in layout):
        layout = []
    if as_json:
        tables = [
            {"table": t.table, "kind": t.kind, "column": t.column, "shards": t.shards, "colocation": t.colocation}
            for t in layout
        ]
        print_json({"database": where, "migrations": rows} | ({"tables": tables} if tables else {}))
        return
    for row in rows:
        if everything or not row["applied"]:
            mark = "applied" if row["applied"] else ("would apply" if dry_run else "pending")
            info(f"{row['version']}_{row['name']}  {mark}")
    for table in layout:
        info(f"table {table.table}  {table.describe()}")
    if all(r["applied"] for r in rows):
        info(f"{where}: up to date")
