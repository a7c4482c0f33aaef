"""``ordersctl config``: the effective settings and where each came from."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from ordersctl import masking
from ordersctl.cli.context import app_context
from ordersctl.masking import MASK, mask_url
from ordersctl.output import out_console, print_json

if TYPE_CHECKING:
    from ordersctl.config import Settings

app = typer.Typer(help="Effective settings.\n\nExample: ordersctl config show --json", no_args_is_help=True)


@app.command()
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")] = False,
) -> None:
    """Print the effective settings and the source of each: flag, environment, secret file (a _FILE variable or
    <field>_file in the TOML file), secrets file (ORDERS_SECRETS_DIR), file (TOML) or default. Secrets and the
    passwords in URLs are masked. --json: the sections, plus "sources" (setting -> source).

    Example: ORDERS_POSTGRES__DSN=postgresql://u:pw@db/orders ordersctl config show --json
    """
    from rich.table import Table

    configuration = app_context(ctx).configuration
    data = masked_settings(configuration.settings)
    if as_json:
        print_json({**data, "sources": configuration.sources})
        return
    table = Table("setting", "value", "source")
    for section, values in data.items():
        for name, value in values.items():
            key = f"{section}.{name}"
            shown = value if isinstance(value, str) else json.dumps(value)
            table.add_row(Text(key), Text(shown), Text(configuration.sources.get(key, "")))
    out_console.print(table)


def masked_settings(settings: Settings) -> dict[str, Any]:
    """The settings as plain data with every secret, every password in a URL and every secret-bearing property
    masked (by name: masking by value would also blank a setting that merely equals a password)."""
    from pydantic import SecretStr

    from ordersctl.settings_sources import is_url_setting

    data: dict[str, Any] = settings.model_dump(mode="json")
    for section, model in settings:
        for name, value in model:
            if isinstance(value, SecretStr):
                data[section][name] = MASK
            elif isinstance(value, str) and is_url_setting(name):
                data[section][name] = mask_url(value)
    data["kafka"]["extra"] = {k: (MASK if masking.is_secret_key(k) else v) for k, v in settings.kafka.extra.items()}
    return data
