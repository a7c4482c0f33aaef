"""``ordersctl config``: the effective settings and where each came from."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from ordersctl.cli.context import app_context
from ordersctl.config import masked_settings
from ordersctl.output import out_console, print_json

app = typer.Typer(help="Effective settings.\n\nExample: ordersctl config show --json", no_args_is_help=True)


@app.command()
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Print the effective settings and the source of each: flag, environment, secret file (a _FILE variable or
    <field>_file in the TOML file), secrets file (ORDERS_SECRETS_DIR), file (TOML) or default. Secrets and the
    passwords in URLs are masked. --json: the sections, plus "sources" (setting -> source).

    Example: ORDERS_POSTGRES__DSN=postgresql://u:pw@db/orders ordersctl config show --json
    """
    configuration = app_context(ctx).configuration
    data = masked_settings(configuration.settings)
    if as_json:
        print_json({**data, "sources": configuration.sources})
        return
    table = Table("setting", "value", "source")
    for section, values in data.items():
        for name, value in values.items():
            key = f"{section}.{name}"
            shown = value if isinstance(value, str) else json.dumps(value)
            table.add_row(Text(key), Text(shown), Text(configuration.sources.get(key, "")))
    out_console.print(table)
