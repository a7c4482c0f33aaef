"""``ordersctl config``: the effective settings."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ordersctl.cli.context import app_context
from ordersctl.config import masked_settings
from ordersctl.output import out_console, print_json

app = typer.Typer(help="Effective settings.\n\nExample: ordersctl config show --json", no_args_is_help=True)


@app.command()
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Print the effective settings (flags > environment > TOML file > defaults); secrets are masked.

    Example: ORDERS_POSTGRES__DSN=postgresql://u:pw@db/orders ordersctl config show --json
    """
    data = masked_settings(app_context(ctx).settings)
    if as_json:
        print_json(data)
    else:
        out_console.print_json(json.dumps(data))
