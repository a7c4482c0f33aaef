"""The built wheel, installed on its own into a fresh virtualenv, migrates a fresh database from any directory:
the SQL migrations travel inside the wheel, nothing is looked up in the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
# What a checkout holds besides its sources; the copy the wheel is built from leaves these out.
_NOT_SOURCES_AT_THE_TOP = {".git", ".venv", ".stack", "build", "dist", "test-output"}


def _not_sources(directory: str, names: list[str]) -> set[str]:
    top = _NOT_SOURCES_AT_THE_TOP if Path(directory) == ROOT else set()
    caches = {
        n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (n[:1] == "." and n.endswith("_cache"))
    }
    return caches | (top & set(names))


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, args))} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def test_the_installed_wheel_migrates_from_any_directory(empty_db: str, tmp_path: Path) -> None:
    # Build from a clean copy of the sources, as a release would (no stale build/ of an earlier in-tree build).
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=_not_sources)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    _run(*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp_path / "dist", source, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("ordersctl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        carried = {name for name in archive.namelist() if not name.startswith("ordersctl-")}
    package = {str(p.relative_to(source)) for p in (source / "ordersctl").rglob("*") if p.is_file()}
    migrations = {f"ordersctl/sql/{p.name}" for p in (source / "sql").glob("*.sql")}
    assert carried == package | migrations  # every module and data file, and the migrations

    # A fresh virtualenv with the locked runtime dependencies, then the wheel alone.
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        *pip,
        "--python",
        python,
        "install",
        "--quiet",
        "--require-hashes",
        "-r",
        ROOT / "requirements.lock",
        cwd=tmp_path,
    )
    _run(*pip, "--python", python, "install", "--quiet", "--no-deps", wheel, cwd=tmp_path)
    _run(*pip, "--python", python, "check", cwd=tmp_path)  # the lock satisfies every requirement of the wheel

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDERS_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {"ORDERS_POSTGRES__DSN": empty_db, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
    ordersctl = venv / "bin" / "ordersctl"

    where = _run(python, "-c", "import ordersctl; print(ordersctl.__file__)", cwd=elsewhere, env=env).stdout
    assert Path(where.strip()).is_relative_to(venv), f"imported {where.strip()}, not the installed wheel"

    _assert_migrates(ordersctl, empty_db, elsewhere, env)


def _assert_migrates(ordersctl: Path, dsn: str, cwd: Path, env: dict[str, str]) -> None:
    """The installed ordersctl applies every migration the wheel carries, and says so."""
    expected = sorted(p.stem for p in (ROOT / "sql").glob("*.sql"))
    applied = json.loads(_run(ordersctl, "db", "migrate", "--json", cwd=cwd, env=env).stdout)
    assert applied["applied"] == expected

    status = _run(ordersctl, "db", "migrate", "--status", cwd=cwd, env=env)
    for name in expected:
        assert f"{name}  applied" in status.stderr
    assert "up to date" in status.stderr
    as_json = json.loads(_run(ordersctl, "db", "migrate", "--status", "--json", cwd=cwd, env=env).stdout)
    assert [(m["version"], m["applied"]) for m in as_json["migrations"]] == [(n[:4], True) for n in expected]

    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"orders", "deliveries", "payments", "items", "outbox", "schema_migrations"} <= tables
