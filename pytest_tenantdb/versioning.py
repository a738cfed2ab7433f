"""Where a tenant database records its schema version.

``user_version`` (``PRAGMA user_version``) is the default; ``table`` keeps a
``schema_migrations`` table (version, name, checksum, applied_at) as many migration tools do.
Both read databases made outside the plugin: no table or a zero pragma means version 0.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Literal, Protocol

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.migrations import Direction, Step

VersioningName = Literal["user_version", "table"]
TABLE = "schema_migrations"


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


def version_store(name: str) -> VersionStore:
    """The store called ``name`` (``user_version`` or ``table``)."""
    if name == "user_version":
        return UserVersionStore()
    if name == "table":
        return TableStore()
    raise ConfigError(f"tenantdb_versioning must be 'user_version' or 'table', not {name!r}")
