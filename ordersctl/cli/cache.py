"""``ordersctl cache``."""

from __future__ import annotations

import typer

app = typer.Typer(help="cache.\n\nExample: ordersctl cache --help", no_args_is_help=True)


@app.command()
def todo() -> None:
    """Not implemented yet.

    Example: ordersctl cache todo
    """
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(3)
