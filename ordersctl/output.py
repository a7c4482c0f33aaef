"""The one owner of terminal output: data goes to stdout, diagnostics and progress to stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# Off a terminal (pipes, CI logs) tables would be squeezed to 80 columns; give them room instead.
out_console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 220)
err_console = Console(stderr=True, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def print_json_line(data: Any) -> None:
    """One JSON object a line on stdout (for streams of records)."""
    sys.stdout.write(json.dumps(data, default=str, separators=(",", ":")) + "\n")


def info(message: str) -> None:
    """A human diagnostic on stderr."""
    err_console.print(message, highlight=False)


def progress() -> Progress:
    """A progress bar on stderr; hidden automatically when stderr is not a terminal."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
