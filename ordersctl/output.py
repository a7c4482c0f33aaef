"""The one owner of terminal output: data goes to stdout, diagnostics and progress to stderr.

When stderr is the JSON log stream (logs.py), a diagnostic is a log record and progress bars are off: every line
on stderr is then one JSON object."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from ordersctl.logs import emit, json_stream

if TYPE_CHECKING:
    from rich.progress import Progress

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


# C0 and C1 control characters and the bidirectional overrides: text from a message (a header, a payload) must
# not move the cursor, recolour the terminal or reorder what is shown around it.
_UNPRINTABLE = {
    c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"
    for c in (*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A))
    if c not in (0x09, 0x0A)
}


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape."""
    return text.translate(_UNPRINTABLE)


def plain(text: str, style: str = "") -> Text:
    """Text for a table cell or a line, shown as it is: no markup, no control characters."""
    return Text(printable(text), style=style)


# A console line's colour says how bad it is; in the log stream, its level says it.
_LEVELS = {"red": logging.ERROR, "yellow": logging.WARNING}


def info(message: str, style: str = "") -> None:
    """A human diagnostic on stderr. Shown as it is (no markup): it may quote a topic, a header, a reason."""
    if json_stream():
        emit(message, _LEVELS.get(style, logging.INFO), "ordersctl.cli")
        return
    err_console.print(plain(message, style), highlight=False)


def progress() -> Progress:
    """A progress bar on stderr; hidden automatically when stderr is not a terminal, and off in the JSON log
    stream even on a terminal (its lines would not be JSON)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=json_stream(),
    )
