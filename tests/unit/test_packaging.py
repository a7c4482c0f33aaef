"""What the build and the locks promise: ranges in pyproject.toml, exact pins with hashes in the lock files,
the migrations carried into the wheel from the one top-level sql/ folder, and a repository that reads nothing
outside itself."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ordersctl.adapters.migrations import default_directory
from tests.conftest import FIXTURE

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.MULTILINE)


def _pyproject() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data


def _requirements(group: str | None = None) -> list[Requirement]:
    project = _pyproject()["project"]
    specs = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(spec) for spec in specs]


def _pins(lock: Path) -> dict[str, str]:
    """Each ``name==version`` line of a lock file, by canonical name."""
    text = lock.read_text()
    pins: dict[str, str] = {canonicalize_name(name): version for name, version in _PIN.findall(text)}
    assert pins, f"{lock.name} pins nothing"
    return pins


def test_runtime_dependencies_are_ranges_not_exact_pins() -> None:
    for req in _requirements():
        operators = {spec.operator for spec in req.specifier}
        assert not operators & {"==", "==="}, f"{req}: a package states a range; the lock holds the exact version"
        assert any(op in {">=", "~="} for op in operators), f"{req}: no lower bound"
        assert any(op in {"<", "~="} for op in operators), f"{req}: no upper bound (the next major, or minor for 0.x)"


def test_every_dependency_is_pinned_in_the_locks_within_its_range() -> None:
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    for lock, pins, reqs in (
        (RUNTIME_LOCK, runtime, _requirements()),
        (DEV_LOCK, dev, _requirements() + _requirements("dev")),
    ):
        for req in reqs:
            name = canonicalize_name(req.name)
            assert name in pins, f"{req.name} is not pinned in {lock.name}: run make lock"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{lock.name} pins {req.name}=={pins[name]}, outside {req.specifier}: run make lock"
            )


def test_the_dev_lock_pins_the_runtime_lock_versions() -> None:
    runtime, dev = _pins(RUNTIME_LOCK), _pins(DEV_LOCK)
    assert {name: dev.get(name) for name in runtime} == runtime
    assert "ordersctl" not in runtime and "ordersctl" not in dev  # the project itself is installed with --no-deps


def test_every_pin_carries_a_hash() -> None:
    for lock in (RUNTIME_LOCK, DEV_LOCK):
        for block in re.split(r"\n(?=[A-Za-z0-9])", lock.read_text()):
            if _PIN.match(block):
                assert "--hash=sha256:" in block, f"{lock.name}: {block.splitlines()[0]} has no hash"


def test_the_lock_tool_is_pinned_in_the_dev_lock() -> None:
    assert "uv" in _pins(DEV_LOCK)
    assert "uv pip compile" in (ROOT / "Makefile").read_text()


def test_the_migrations_have_one_source_the_top_level_sql_folder() -> None:
    # The build maps sql/ into the wheel (setup.py); a copy inside the package would be a second source.
    assert not (ROOT / "ordersctl" / "sql").exists()
    assert _pyproject()["tool"]["setuptools"]["package-data"]["ordersctl.sql"] == ["*.sql"]


def test_a_checkout_finds_its_migrations_in_the_top_level_sql_folder() -> None:
    assert default_directory() == ROOT / "sql"
    assert sorted(p.name for p in default_directory().glob("*.sql"))[0] == "0001_orders.sql"


def test_the_canonical_sample_lives_in_the_repository() -> None:
    assert FIXTURE.is_relative_to(ROOT), f"{FIXTURE} is outside the repository"
    assert FIXTURE.is_file()


def test_the_version_is_written_in_one_place() -> None:
    import ordersctl

    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert _pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ordersctl.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", ordersctl.__version__)


def test_the_license_is_shipped_and_declared() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert "Apache License\n" in (ROOT / "LICENSE").read_text() and "Version 2.0" in (ROOT / "LICENSE").read_text()
    # An SPDX license expression replaces the License :: classifiers (setuptools refuses both).
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    oldest = project["requires-python"].removeprefix(">=")
    assert f"Programming Language :: Python :: {oldest}" in project["classifiers"]


def test_the_clone_runs_its_modules_compiled_as_the_wheel_does() -> None:
    # pip compiles a wheel's modules as it installs them; `make install` (editable) does the same for ours. Where
    # PYTHONDONTWRITEBYTECODE is set (this machine, many images) Python would otherwise compile the package at every
    # start. (A module edited since is compiled again at import until the next `make install`: not checked here.)
    missing = [
        str(source.relative_to(ROOT))
        for source in sorted((ROOT / "ordersctl").rglob("*.py"))
        if not Path(importlib.util.cache_from_source(str(source))).is_file()
    ]
    assert missing == [], f"no bytecode for {len(missing)} modules (make install compiles them): {missing[:3]}"
