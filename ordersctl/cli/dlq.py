"""``ordersctl dlq``."""

from __future__ import annotations

import typer

app = typer.Typer(help="dlq.\n\nExample: ordersctl dlq --help", no_args_is_help=True)


@app.command()
def todo() -> None:
    """Not implemented yet.

    Example: ordersctl dlq todo
    """
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(3)
