"""Where a tenant database records its schema version.

``user_version`` (``PRAGMA user_version``) is the default for folders of steps; ``table`` keeps a
``schema_migrations`` table (version, name, checksum, applied_at) as many migration tools do;
``alembic`` and ``django`` keep ``alembic_version`` and ``django_migrations`` exactly as those
tools do, and are the default for their sources (``auto``), so a tenant file the real app made is
read right and the real app accepts a tenant the fleet migrator moved. All read databases made
outside the plugin: no table or a zero pragma means version 0.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Literal, Protocol

from pytest_tenantdb.errors import ConfigError, TenantDatabaseError
from pytest_tenantdb.migrations import Direction, MigrationSet, Step
from pytest_tenantdb.settings import STORES

VersioningName = Literal["user_version", "table", "alembic", "django"]
TABLE = "schema_migrations"
ALEMBIC_TABLE = "alembic_version"
DJANGO_TABLE = "django_migrations"
TABLES = (TABLE, ALEMBIC_TABLE, DJANGO_TABLE)  # bookkeeping, not part of an app's schema


class VersionStore(Protocol):
    """Reads and records a database's schema version inside the step's transaction."""

    name: VersioningName

    def read(self, conn: sqlite3.Connection) -> int: ...

    def record(self, conn: sqlite3.Connection, step: Step, direction: Direction, version: int) -> None: ...


class UserVersionStore:
    """``PRAGMA user_version``: free, atomic with the step, invisible to the app's schema."""

    name: VersioningName = "user_version"

    def read(self, conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def record(self, conn: sqlite3.Connection, step: Step, direction: Direction, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version)}")


class TableStore:
    """A ``schema_migrations`` table, one row per applied step."""

    name: VersioningName = "table"

    def read(self, conn: sqlite3.Connection) -> int:
        exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)
        ).fetchone()
        if not exists:
            return 0
        row = conn.execute(f"SELECT MAX(CAST(version AS INTEGER)) FROM {TABLE}").fetchone()
        return int(row[0] or 0)

    def record(self, conn: sqlite3.Connection, step: Step, direction: Direction, version: int) -> None:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        if direction == "up":
            conn.execute(
                f"INSERT OR REPLACE INTO {TABLE} VALUES (?, ?, ?, ?)",
                (step.version, step.name, step.checksum, datetime.now(UTC).isoformat()),
            )
        else:
            conn.execute(f"DELETE FROM {TABLE} WHERE version = ?", (step.version,))


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    return bool(
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
    )


def _empty_version(migrations: MigrationSet) -> int:
    """The version of a database whose tool table exists but lists nothing: after the base step
    if the set has one (a first step that is not the tool's own; it creates the table), else 0."""
    first = migrations[0] if len(migrations) else None
    return 1 if first is not None and not first.ident.startswith(("alembic:", "django:")) else 0


class AlembicStore:
    """``alembic_version``: one row per head of the revisions applied, as Alembic keeps it."""

    name: VersioningName = "alembic"

    def __init__(self, migrations: MigrationSet) -> None:
        self.migrations = migrations
        self._position = {s.name: s.version for s in migrations if s.ident.startswith("alembic:")}
        self._heads: dict[int, set[str]] = {}

    def heads(self, version: int) -> set[str]:
        """The revisions Alembic lists once every step up to ``version`` is applied."""
        if version not in self._heads:
            applied = [s for s in self.migrations if s.version <= version and s.ident.startswith("alembic:")]
            below = {down for s in applied for down in getattr(s, "down_revisions", ())}
            self._heads[version] = {s.name for s in applied} - below
        return self._heads[version]

    def read(self, conn: sqlite3.Connection) -> int:
        if not has_table(conn, ALEMBIC_TABLE):
            return 0
        rows = {str(r[0]) for r in conn.execute(f"SELECT version_num FROM {ALEMBIC_TABLE}")}
        if not rows:
            return _empty_version(self.migrations)
        unknown = sorted(rows - set(self._position))
        if unknown:
            raise TenantDatabaseError(
                f"{ALEMBIC_TABLE} lists revision(s) {unknown} that {self.migrations.origin} does not have "
                "(a newer release, or another project's database?)"
            )
        version = max(self._position[r] for r in rows)
        if self.heads(version) != rows:
            raise TenantDatabaseError(
                f"{ALEMBIC_TABLE} lists {sorted(rows)}, which is not a state of the history in the order "
                f"tenantdb runs it (expected {sorted(self.heads(version))} at {self.migrations.step(version).label}); "
                "upgrade this tenant with Alembic to a merge point first."
            )
        return version

    def record(self, conn: sqlite3.Connection, step: Step, direction: Direction, version: int) -> None:
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {ALEMBIC_TABLE} (version_num VARCHAR(32) NOT NULL, "
            "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
        )
        heads = self.heads(version)
        current = {str(r[0]) for r in conn.execute(f"SELECT version_num FROM {ALEMBIC_TABLE}")}
        if current != heads:
            conn.execute(f"DELETE FROM {ALEMBIC_TABLE}")
            conn.executemany(
                f"INSERT INTO {ALEMBIC_TABLE} (version_num) VALUES (?)", [(h,) for h in sorted(heads)]
            )


class DjangoStore:
    """``django_migrations``: one row per applied migration, as Django's recorder keeps it."""

    name: VersioningName = "django"

    def __init__(self, migrations: MigrationSet) -> None:
        self.migrations = migrations
        self._keys = [
            (s.version, getattr(s, "app", None), getattr(s, "migration_name", None)) for s in migrations
        ]

    def read(self, conn: sqlite3.Connection) -> int:
        """The last step of the longest run of applied migrations from the start (Django skips
        a migration it lists as applied, so later ones applied out of order are no problem)."""
        if not has_table(conn, DJANGO_TABLE):
            return 0
        applied = set(conn.execute(f"SELECT app, name FROM {DJANGO_TABLE}").fetchall())
        version = _empty_version(self.migrations)
        for step_version, app, name in self._keys:
            if app is None:
                continue  # the base step: applied when the table is there
            if (app, name) not in applied:
                break
            version = step_version
        return version

    def record(self, conn: sqlite3.Connection, step: Step, direction: Direction, version: int) -> None:
        app, name = getattr(step, "app", None), getattr(step, "migration_name", None)
        conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{DJANGO_TABLE}" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, '
            '"app" varchar(255) NOT NULL, "name" varchar(255) NOT NULL, "applied" datetime NOT NULL)'
        )
        if app is None:
            return
        if direction == "down":
            conn.execute(f"DELETE FROM {DJANGO_TABLE} WHERE app = ? AND name = ?", (app, name))
        elif not conn.execute(
            f"SELECT 1 FROM {DJANGO_TABLE} WHERE app = ? AND name = ?", (app, name)
        ).fetchone():
            applied = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
            conn.execute(
                f"INSERT INTO {DJANGO_TABLE} (app, name, applied) VALUES (?, ?, ?)", (app, name, applied)
            )


def version_store(
    name: str, migrations: MigrationSet | None = None, setting: str = "[tool.tenantdb] versioning"
) -> VersionStore:
    """The store called ``name``; ``auto`` is the source's own (Alembic, Django) or user_version.
    ``setting`` is where ``name`` was set, as a message names it (``--versioning`` for the CLI)."""
    if name == "auto":
        name = (migrations.versioning if migrations is not None else None) or "user_version"
    if name == "user_version":
        return UserVersionStore()
    if name == "table":
        return TableStore()
    if name in ("alembic", "django"):
        if migrations is None:
            raise ConfigError(f"the {name} version store needs the migration set")
        if migrations.versioning != name:
            raise ConfigError(
                f"{setting}{' ' if setting.startswith('-') else ' = '}{name} keeps {name.title()}'s own table, but {migrations.origin} is "
                f"not {'an' if name == 'alembic' else 'a'} {name.title()} history; use auto, user_version or table."
            )
        return AlembicStore(migrations) if name == "alembic" else DjangoStore(migrations)
    raise ConfigError(f"{setting} must be one of {list(STORES)}, not {name!r}")
