"""Where settings come from, strictly: every key is checked against the settings there are, and each value
remembers its source (``config show`` prints it).

Sources, strongest first:

1. CLI flags;
2. ``ORDERS_<SECTION>__<FIELD>`` environment variables;
3. ``ORDERS_<SECTION>__<FIELD>_FILE``: the value is read from that file (secrets, URLs and
   kafka.extra only);
4. the secrets directory ``ORDERS_SECRETS_DIR``, one file per setting named ``<section>.<field>`` (as Docker
   and Kubernetes mount secrets);
5. the TOML file (``--config`` or ``ORDERS_CONFIG``), where a secret, URL or kafka.extra may be given as
   ``<field>_file = "path"`` (relative to the TOML file) instead;
6. the defaults.

A value read from a file loses one trailing newline. An unknown key, section, variable or secrets file is a
``ConfigError`` naming it and the closest valid key. ``ORDERS_*`` variables that are not settings are listed in
``NOT_SETTINGS`` and ``NOT_SETTINGS_PREFIXES``.
"""

from __future__ import annotations

import difflib
import json
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from ordersctl.errors import ConfigError

ENV_PREFIX = "ORDERS_"
CONFIG_ENV = "ORDERS_CONFIG"
SECRETS_DIR_ENV = "ORDERS_SECRETS_DIR"
FILE_SUFFIX = "_file"
# ORDERS_* variables that are not settings: where the settings are, and the variables of the local stack
# (scripts/stack), helm for the chart's tests (scripts/ensure-helm), the tests, the benchmarks and the
# fault-injection harness.
NOT_SETTINGS = frozenset({CONFIG_ENV, SECRETS_DIR_ENV})
# ORDERS_HELM and ORDERS_HELM_DIR: the helm binary of the chart's tests (tests/helm_chart.py).
NOT_SETTINGS_PREFIXES = ("ORDERS_STACK_", "ORDERS_TEST_", "ORDERS_BENCH_", "ORDERS_CHAOS_", "ORDERS_HELM")
DEFAULT = "default"
FLAG = "flag"


def is_url_setting(name: str) -> bool:
    """A DSN or URL: it may carry a password, so it is masked and may come from a file like a secret."""
    return name.endswith(("dsn", "url"))


def _is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def _is_dict(annotation: Any) -> bool:
    return annotation is dict or typing.get_origin(annotation) is dict


@dataclass(frozen=True)
class Catalog:
    """The settings there are, as dotted keys (``postgres.dsn``), and which of them may come from a file."""

    sections: tuple[str, ...]
    annotations: dict[str, Any]  # dotted key -> the field's annotation

    @classmethod
    def of(cls, model: type[BaseModel]) -> Catalog:
        annotations: dict[str, Any] = {}
        for section, info in model.model_fields.items():
            section_model = info.annotation
            assert isinstance(section_model, type) and issubclass(section_model, BaseModel)
            for name, field_info in section_model.model_fields.items():
                annotations[f"{section}.{name}"] = field_info.annotation
        return cls(tuple(model.model_fields), annotations)

    def is_secret(self, key: str) -> bool:
        return _is_secret(self.annotations.get(key))

    def from_file(self, key: str) -> bool:
        """Secrets, URLs and mappings (``kafka.extra``, which may hold sasl.jaas.config and the like, as a JSON
        object) may be given as a file's content (``<field>_file``, ``..._FILE``)."""
        annotation = self.annotations.get(key)
        return annotation is not None and (_is_secret(annotation) or is_url_setting(key) or _is_dict(annotation))

    def file_keys(self) -> list[str]:
        return [f"{key}{FILE_SUFFIX}" for key in self.annotations if self.from_file(key)]

    def unknown(self, what: str, wrong: str, candidates: list[str] | None = None) -> ConfigError:
        """The error for an unknown name, with the closest valid one when there is one."""
        pool = candidates if candidates is not None else [*self.annotations, *self.file_keys()]
        close = difflib.get_close_matches(wrong.lower(), pool, n=1, cutoff=0.6)
        hint = (
            f": did you mean {close[0]}?"
            if close
            else f" (settings are <section>.<field>, sections {', '.join(self.sections)})"
        )
        return ConfigError(f"unknown {what}{hint}")

    def parse(self, key: str, text: str, where: str) -> Any:
        """A value given as text (environment, file): JSON for a mapping, else the text (pydantic converts)."""
        if not _is_dict(self.annotations[key]):
            return text
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = None
        if not isinstance(value, dict):
            raise ConfigError(f"invalid setting {key} ({where}): not a JSON object")
        return value


def env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "__").upper()


def read_secret_file(path: Path, key: str, where: str) -> str:
    """A file's content, less one trailing newline; an error names the setting and the path, never content."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read {key} from {path} ({where}): not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {key} from {path} ({where}): {exc.strerror or type(exc).__name__}") from None
    return text.removesuffix("\n").removesuffix("\r")


@dataclass
class Gathered:
    """The raw values of every source merged (strongest wins, a whole setting at a time) and their sources."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def put(self, key: str, value: Any, source: str) -> None:
        self.values[key] = value
        self.sources[key] = source

    def nested(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, value in self.values.items():
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = value
        return out


def _toml(catalog: Catalog, path: Path, into: Gathered) -> None:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    for section, table in data.items():
        if section not in catalog.sections or not isinstance(table, dict):
            raise catalog.unknown(f"section [{section}] in {path}", section, list(catalog.sections))
        for name, value in table.items():
            key = f"{section}.{name}"
            if key in catalog.annotations:
                into.put(key, value, f"file {path}")
            elif key.endswith(FILE_SUFFIX) and catalog.from_file(key.removesuffix(FILE_SUFFIX)):
                target = key.removesuffix(FILE_SUFFIX)
                if name.removesuffix(FILE_SUFFIX) in table:
                    raise ConfigError(f"{path}: set {target} or {key}, not both")
                if not isinstance(value, str):
                    raise ConfigError(f"invalid setting {key} in {path}: a path (a string)")
                secret = path.parent / Path(value).expanduser()  # relative to the TOML file
                text = read_secret_file(secret, target, f"{key} in {path}")
                into.put(target, catalog.parse(target, text, f"{key} in {path}"), f"secret file {secret} ({path})")
            else:
                raise catalog.unknown(f"setting {key} in {path}", key)


def _secrets_dir(catalog: Catalog, directory: Path, into: Gathered) -> None:
    if not directory.is_dir():
        raise ConfigError(f"{SECRETS_DIR_ENV}: not a directory: {directory}")
    for entry in sorted(directory.iterdir()):
        # Kubernetes mounts its own entries beside the secrets (..data, ..2026_01_01...): not settings.
        if entry.name.startswith(".") or entry.is_dir():
            continue
        key = entry.name
        if key not in catalog.annotations:
            raise catalog.unknown(f"secrets file {entry} ({SECRETS_DIR_ENV})", key, list(catalog.annotations))
        where = f"{SECRETS_DIR_ENV} file {entry}"
        into.put(key, catalog.parse(key, read_secret_file(entry, key, where), where), f"secrets file {entry}")


def _is_setting_variable(name: str) -> bool:
    upper = name.upper()
    return upper.startswith(ENV_PREFIX) and upper not in NOT_SETTINGS and not upper.startswith(NOT_SETTINGS_PREFIXES)


def _environment(catalog: Catalog, environ: Mapping[str, str], into: Gathered) -> None:
    by_name = {env_name(key): key for key in catalog.annotations}
    files = {f"{env_name(key)}{FILE_SUFFIX.upper()}": key for key in catalog.annotations if catalog.from_file(key)}
    given = {name: value for name, value in environ.items() if _is_setting_variable(name)}
    unknown = sorted(name for name in given if name.upper() not in by_name and name.upper() not in files)
    if unknown:
        wrong = unknown[0]
        dotted = wrong.upper().removeprefix(ENV_PREFIX).replace("__", ".").lower()
        raise catalog.unknown(f"environment variable {wrong}", dotted)
    for name, value in sorted(given.items()):  # the _FILE variables first: a value given directly beats them
        if name.upper() in files:
            key = files[name.upper()]
            path = Path(value).expanduser()
            text = read_secret_file(path, key, name)
            into.put(key, catalog.parse(key, text, name), f"secret file {path} ({name})")
    for name, value in given.items():
        if name.upper() in by_name:
            key = by_name[name.upper()]
            into.put(key, catalog.parse(key, value, name), f"environment {name}")


def _flags(catalog: Catalog, overrides: Mapping[str, Mapping[str, Any]], into: Gathered) -> None:
    for section, values in overrides.items():
        for name, value in values.items():
            key = f"{section}.{name}"
            if key not in catalog.annotations:
                raise catalog.unknown(f"setting {key}", key)
            into.put(key, value, FLAG)


def gather(
    catalog: Catalog,
    config_file: Path | None,
    overrides: Mapping[str, Mapping[str, Any]],
    environ: Mapping[str, str],
) -> Gathered:
    """Every source, weakest first, each setting taken whole from the strongest source that gives it."""
    gathered = Gathered()
    if config_file is not None:
        _toml(catalog, config_file, gathered)
    if environ.get(SECRETS_DIR_ENV):
        _secrets_dir(catalog, Path(environ[SECRETS_DIR_ENV]).expanduser(), gathered)
    _environment(catalog, environ, gathered)
    _flags(catalog, overrides, gathered)
    return gathered


# Choices are case-insensitive ("sasl_ssl" is SASL_SSL): these normalize a choice before it is checked.
def upper_choice(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def lower_choice(value: object) -> object:
    return value.lower() if isinstance(value, str) else value
