"""What every command reads from ``ctx.obj``: the settings sources and a Runtime built on first use."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from ordersctl.config import Configuration, Settings
    from ordersctl.runtime import Runtime


class AppContext:
    """Holds the config sources; a command adds its own flag overrides, then asks for settings/runtime."""

    def __init__(self, config_file: Path | None, overrides: dict[str, Any]) -> None:
        self.config_file = config_file
        self.overrides = overrides
        self._configuration: Configuration | None = None
        self._runtime: Runtime | None = None
        # What this process calls itself to PostgreSQL (application_name) unless the settings say.
        self.process_name = "ordersctl"

    def override(self, section: str, **values: Any) -> None:
        """CLI flags of a command; ``None`` means "flag not given"."""
        given = {k: v for k, v in values.items() if v is not None}
        if given:
            self.overrides.setdefault(section, {}).update(given)

    @property
    def configuration(self) -> Configuration:
        """The settings and where each came from, loaded on first use."""
        if self._configuration is None:
            # Imported here, as every module a command needs is (test_import_discipline.py): pydantic and the
            # settings models are not loaded for --help.
            from ordersctl.config import load_configuration
            from ordersctl.logs import setup_logging

            self._configuration = load_configuration(self.config_file, self.overrides)
            log = self._configuration.settings.log
            setup_logging(log.level, log.format)
        return self._configuration

    @property
    def settings(self) -> Settings:
        return self.configuration.settings

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            # Imported here: the client libraries are the slow part of start-up, and some commands
            # (consume's supervisor, config) never build a client in this process.
            from ordersctl.config import for_process
            from ordersctl.runtime import Runtime

            self._runtime = Runtime(for_process(self.settings, self.process_name))
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


def app_context(ctx: typer.Context) -> AppContext:
    obj = ctx.find_root().obj
    assert isinstance(obj, AppContext)
    return obj
