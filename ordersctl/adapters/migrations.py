"""Forward-only SQL migrations from ``sql/NNNN_name.sql``, recorded in ``schema_migrations``."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from ordersctl.adapters import citus
from ordersctl.errors import MigrationError

# Any constant works; it only has to be the same for every ordersctl process.
_LOCK_KEY = 7_316_043_521
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


@dataclass(frozen=True)
class Migration:
    """One SQL file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    """A migration and whether it is applied."""

    migration: Migration
    applied: bool


def default_directory() -> Path:
    """The migrations that came with this ordersctl: ``ordersctl/sql`` in an installed wheel (the build maps the
    top-level ``sql/`` folder there, see setup.py), else ``sql/`` beside the package in a checkout (a clone, or an
    editable install of one)."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "sql"
    return installed if installed.is_dir() else package.parent / "sql"


def load(directory: Path) -> list[Migration]:
    """Every migration file, in version order; a misnamed .sql file is an error, not silently skipped."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder not found: {directory}")
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name must be NNNN_name.sql: {path.name}")
        found.append(Migration(match[1], match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


class Migrator:
    """Applies pending migrations, each in its own transaction, under a transaction-scoped advisory lock: no
    session state, so it works through a transaction pooler (PgBouncer) too."""

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], migrations: list[Migration]) -> None:
        if not conn.autocommit:
            raise ValueError("Migrator needs an autocommit connection (it manages transactions itself)")
        self._conn = conn
        self._migrations = migrations
        self.distributed: list[str] = []  # the tables the last apply() distributed (Citus)

    def _applied(self) -> dict[str, str]:
        exists = self._conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
        if not exists or not exists[0]:
            return {}
        rows = self._conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
        return {str(v): str(c) for v, c in rows}

    def status(self) -> list[MigrationState]:
        """Read-only: which migrations are applied; raises when an applied file was changed."""
        applied = self._applied()
        for m in self._migrations:
            if m.version in applied and applied[m.version] != m.checksum:
                raise MigrationError(f"{m.version}_{m.name}.sql was changed after it was applied")
        unknown = sorted(set(applied) - {m.version for m in self._migrations})
        if unknown:
            raise MigrationError(f"the database has migrations this checkout lacks: {', '.join(unknown)}")
        return [MigrationState(m, m.version in applied) for m in self._migrations]

    def pending(self) -> list[Migration]:
        return [s.migration for s in self.status() if not s.applied]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """A transaction holding the migrations' lock until it ends. Sessions carry a statement_timeout sized for
        the pipeline's statements; rewriting a large table may take far longer, so it is lifted for this
        transaction only; its lock_timeout stays, so a migration that cannot get its lock fails rather than
        queueing every reader and writer behind it."""
        with self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            self._conn.execute("SET LOCAL statement_timeout = 0")
            yield

    def apply(self) -> list[Migration]:
        """Apply what is pending; safe when two processes run it at once: each migration is checked again under
        the lock, so one that another process applied meanwhile is skipped."""
        with self._locked():
            self._conn.execute(_TABLE)
        done: list[Migration] = []
        for migration in self.pending():
            try:
                with self._locked():
                    if self._conn.execute(
                        "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
                    ).fetchone():
                        continue
                    self._conn.execute(migration.sql.encode())
                    self._conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
            except psycopg.Error as exc:
                raise MigrationError(f"{migration.version}_{migration.name}.sql failed: {exc}") from exc
            done.append(migration)
        self.distribute()
        return done

    def distribute(self) -> list[str]:
        """On a Citus coordinator, distribute the tables not distributed yet (see ``adapters/citus.py``); on
        plain PostgreSQL, nothing. Under the migrations' lock, so two migrators never distribute a table twice."""
        with self._locked():
            self.distributed = citus.distribute(self._conn)
        return self.distributed

    def layout(self) -> list[citus.TableDistribution]:
        """Read-only: how each table is distributed (``local`` for all on plain PostgreSQL)."""
        return citus.layout(self._conn)
