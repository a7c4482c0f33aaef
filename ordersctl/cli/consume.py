"""``ordersctl consume``."""

from __future__ import annotations

import typer


def consume() -> None:
    """Not implemented yet.

    Example: ordersctl consume --help
    """
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(3)
