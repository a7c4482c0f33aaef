"""``ordersctl serve``."""

from __future__ import annotations

import typer


def serve() -> None:
    """Not implemented yet.

    Example: ordersctl serve --help
    """
    typer.echo("not implemented yet", err=True)
    raise typer.Exit(3)
