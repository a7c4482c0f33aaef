"""``ordersctl db``: database schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.output import info, print_json

app = typer.Typer(help="Database schema.\n\nExample: ordersctl db migrate --status", no_args_is_help=True)


@app.command()
def migrate(
    ctx: typer.Context,
    status: Annotated[bool, typer.Option("--status", help="Show applied and pending; change nothing.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be applied; apply nothing.")] = False,
    directory: Annotated[Path | None, typer.Option(help="Folder of NNNN_name.sql files.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Apply pending SQL migrations, each in its own transaction, under an advisory lock.

    Example: ordersctl db migrate            (then: ordersctl db migrate --status)
    """
    from ordersctl.adapters.migrations import Migrator, default_directory, load
    from ordersctl.adapters.postgres import address

    settings = app_context(ctx).settings
    migrations = load(directory or default_directory())
    where = address(settings.postgres.dsn)
    with app_context(ctx).runtime.pg_connect(autocommit=True) as conn:
        migrator = Migrator(conn, migrations)
        if status or dry_run:
            states = migrator.status()
            rows = [{"version": s.migration.version, "name": s.migration.name, "applied": s.applied} for s in states]
            if as_json:
                print_json({"database": where, "migrations": rows})
                return
            for row in rows:
                if status or not row["applied"]:
                    mark = "applied" if row["applied"] else ("would apply" if dry_run else "pending")
                    info(f"{row['version']}_{row['name']}  {mark}")
            if not any(not r["applied"] for r in rows):
                info(f"{where}: up to date")
            return
        applied = migrator.apply()
    if as_json:
        print_json({"database": where, "applied": [f"{m.version}_{m.name}" for m in applied]})
        return
    for m in applied:
        info(f"applied {m.version}_{m.name}")
    info(f"{where}: up to date" + (f" ({len(applied)} applied)" if applied else ""))
