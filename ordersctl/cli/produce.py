"""``ordersctl produce``."""

from __future__ import annotations

import typer


def produce() -> None:
    """Not implemented yet.

    Example: ordersctl produce --help
    """
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(3)
