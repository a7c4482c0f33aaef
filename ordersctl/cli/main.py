"""The ``ordersctl`` command tree. Errors become exit codes here, at the edge, and nowhere else."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

# Typer vendors its own click; its exceptions live here.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from ordersctl import __version__
from ordersctl.cli import cache, config_cmd, consume, db, dlq, observe, produce, serve, topics
from ordersctl.cli.context import AppContext
from ordersctl.cli.exit import leave
from ordersctl.errors import AccessDenied, ConfigError, OrdersError, UnknownTopic, release_frames
from ordersctl.logs import emit, identify, json_stream
from ordersctl.masking import mask_text

# pydantic looks for plugins in every installed distribution's entry points when it builds its first model
# (about 7 ms of every command's start-up, docs/performance.md); ordersctl uses none. A value the user set wins
# (an empty one turns the lookup back on).
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

app = typer.Typer(
    name="ordersctl",
    help="Operations toolkit for the Kafka -> PostgreSQL order pipeline.\n\n"
    "Example: ordersctl db migrate && ordersctl topics create --dlq && ordersctl consume --workers 4",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db.app, name="db")
app.add_typer(topics.app, name="topics")
app.add_typer(dlq.app, name="dlq")
app.add_typer(cache.app, name="cache")
app.add_typer(config_cmd.app, name="config")
app.command("consume")(consume.consume)
app.command("produce")(produce.produce)
app.command("serve")(serve.serve)
app.command("status")(observe.status)
app.command("trace")(observe.trace)


def _version(value: bool) -> None:
    if value:
        print(f"ordersctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="TOML config file (also ORDERS_CONFIG).")
    ] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(help="Kafka bootstrap servers.")] = None,
    dsn: Annotated[str | None, typer.Option(help="PostgreSQL DSN.")] = None,
    redis_url: Annotated[str | None, typer.Option(help="Redis URL.")] = None,
    log_level: Annotated[str | None, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = None,
    log_format: Annotated[str | None, typer.Option(help="auto, json or console.")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Operations toolkit for the Kafka -> PostgreSQL order pipeline."""
    app_ctx = AppContext(config, {})
    app_ctx.override("kafka", bootstrap_servers=bootstrap_servers)
    app_ctx.override("postgres", dsn=dsn)
    app_ctx.override("redis", url=redis_url)
    app_ctx.override("log", level=log_level.upper() if log_level else None, format=log_format)
    app_ctx.process_name = f"ordersctl-{ctx.invoked_subcommand}" if ctx.invoked_subcommand else "ordersctl"
    identify(ctx.invoked_subcommand or "ordersctl")
    _given_format[:] = [log_format]
    ctx.obj = app_ctx
    ctx.call_on_close(app_ctx.close)


# The --log-format flag, kept for a line written before the settings are loaded (or when they cannot be).
_given_format: list[str | None] = [None]


def _say(text: str) -> None:
    """The one line at the edge: a log record in the JSON log stream, plain text otherwise."""
    from ordersctl.config import log_format_given  # only on the way out: --help loads no settings

    if json_stream(log_format_given(_given_format[0])):
        emit(text, logging.ERROR)
    else:
        sys.stderr.write(mask_text(text) + "\n")


def _fail(message: str, code: int) -> int:
    _say(f"ordersctl: {message}")
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point: one line and an exit code for every expected failure, never a traceback."""
    try:
        result = app(args=argv, standalone_mode=False, prog_name="ordersctl")
    except BaseException as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        # What the command's frames held (a librdkafka client among them) must go now, before the interpreter
        # finalizes: confluent-kafka keeps the exception an error callback raised (errors.release_frames).
        release_frames(exc)
        return code
    return result if isinstance(result, int) else 0


def _exit_code(exc: BaseException) -> int | None:
    """The exit code of an expected failure, after its one line; None for anything else (a bug: its traceback)."""
    if isinstance(exc, NoArgsIsHelpError):
        # Typer's Rich help prints itself (on stdout) and returns nothing to write.
        text = exc.ctx.get_help() if exc.ctx is not None else ""
        if text.strip():
            _say(text)
        return 2
    if isinstance(exc, UsageError):
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        return _fail(f"error: {exc.format_message()}{hint}", 2)
    if isinstance(exc, typer.Abort):
        return _fail("aborted", 130)
    if isinstance(exc, ConfigError):
        return _fail(f"config error: {exc}", 2)
    if isinstance(exc, AccessDenied | UnknownTopic):
        # Credentials, certificates, ACLs, topic names: the configuration, as for ConfigError.
        return _fail(f"error: {exc}", 2)
    if isinstance(exc, OrdersError):  # ServiceUnavailable among them: exit 1
        return _fail(f"error: {exc}", 1)
    if isinstance(exc, KeyboardInterrupt):
        return _fail("interrupted", 130)
    return None


def run() -> None:
    leave(main())
