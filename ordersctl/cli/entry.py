"""The ``ordersctl`` console script's target, and nothing more.

Where a worker of ``consume`` is a spawned process (no zygote: ordersctl/zygote.py), multiprocessing runs the
parent's main script again in it (as
``__mp_main__``): for the console script, ``from ordersctl.cli.entry import run``. Importing the command tree
there (typer, rich, every command group: about 45 ms of CPU) would be start-up each worker pays for nothing."""

from __future__ import annotations


def run() -> None:
    from ordersctl.cli.main import run as run_command_tree

    run_command_tree()
