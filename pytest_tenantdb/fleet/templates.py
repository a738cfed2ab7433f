"""Template databases: one file per schema version (and per seeded size class), built once.

A template at version v is the empty database plus steps 1..v. Its file name carries the hash
of those steps, so editing a migration changes the name and a stale template is never used.
Building happens behind a file lock, so ``pytest -n 2`` builds each template once per machine.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from pytest_tenantdb import database
from pytest_tenantdb.errors import StepFailure, TemplateBuildError
from pytest_tenantdb.fleet.seeding import SEEDER_VERSION, SIZE_ROWS, Seeder
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.schema import Schema
from pytest_tenantdb.versioning import TABLES, VersionStore

LOCK_TIMEOUT = 600.0
#: Part of every template's key: bumped when the way templates are built changes.
TEMPLATE_FORMAT = "2"  # 2: the version-0 template is a real SQLite file, not zero bytes


def _connect_partial(path: Path) -> sqlite3.Connection:
    """A connection for building a template file nobody else sees yet.

    No fsync and an in-memory journal: a failed build deletes the file, and a finished one is
    only published (renamed into place) after it is closed.
    """
    conn = database.connect(path)
    conn.execute("PRAGMA journal_mode = MEMORY")
    conn.execute("PRAGMA synchronous = OFF")
    return conn


class TemplateCache:
    """Builds and finds template files under ``directory`` (pytest's cache dir by default)."""

    def __init__(
        self,
        directory: Path,
        migrations: MigrationSet,
        store: VersionStore,
        scratch: Path | None = None,
    ) -> None:
        self.directory = directory
        self.scratch = scratch or directory / "scratch"
        self.migrations = migrations
        self.store = store
        self.built = 0
        directory.mkdir(parents=True, exist_ok=True)

    def _key(self, version: int, *extra: str) -> str:
        parts = [
            self.migrations.prefix_hash(version),
            self.store.name,
            sqlite3.sqlite_version,
            TEMPLATE_FORMAT,
            *extra,
        ]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:20]

    def _locked_build(self, target: Path, build: Callable[[Path], None]) -> Path:
        if target.exists():
            return target
        with FileLock(str(target) + ".lock", timeout=LOCK_TIMEOUT):
            if target.exists():
                return target
            partial = target.with_name(target.name + f".{os.getpid()}.building")
            database.remove_side_files(partial)
            partial.unlink(missing_ok=True)
            try:
                build(partial)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
                database.remove_side_files(partial)
            self.built += 1
        return target

    def cached_schema_template(self, version: int) -> Path | None:
        """The template at ``version`` if it is already built, without building anything."""
        target = self.directory / f"v{version:04d}-{self._key(version)}.sqlite3"
        return target if target.exists() else None

    def schema_template(self, version: int) -> Path:
        """The template at ``version`` with no rows, built from the one before it.

        Missing templates are built upwards from the newest cached one, iteratively, so a long
        history never recurses.
        """
        version = self.migrations.resolve(version)
        chain = [v for v in (0, *self.migrations.versions) if v <= version]
        start = next((n for n in range(len(chain) - 1, -1, -1) if self.cached_schema_template(chain[n])), 0)
        path = Path()
        for n in range(start, len(chain)):
            target = self.directory / f"v{chain[n]:04d}-{self._key(chain[n])}.sqlite3"
            previous = chain[n - 1] if n else None
            path = self._locked_build(target, functools.partial(self._build_schema, chain[n], previous))
        return path

    def _build_schema(self, version: int, previous: int | None, partial: Path) -> None:
        if previous is None:  # the empty database, with its header written (a 0-byte file is no tenant)
            conn = database.connect(partial, must_exist=False)
            try:
                conn.execute("PRAGMA user_version = 0")
            finally:
                conn.close()
            return
        source = self.cached_schema_template(previous)
        assert source is not None, "templates are built in version order"
        database.copy_file(source, partial)
        conn = _connect_partial(partial)
        try:
            run_plan(conn, self.migrations, self.migrations.plan(previous, version), self.store)
        except StepFailure as exc:
            raise TemplateBuildError(
                f"building the template at version {version} failed: {exc}\n"
                "The step fails on a database freshly migrated from empty; fix the migration."
            ) from exc
        finally:
            conn.close()

    def seeded_template(self, version: int, size: str, variant: int, seeder: Seeder) -> Path:
        """The template at ``version`` filled with ``size`` fake data (variant ``variant``).

        Cached on disk unless the seeder has user generators (they cannot be hashed): those are
        built under the seeder's own token, never reused by another seeder.
        """
        version = self.migrations.resolve(version)
        base = self.schema_template(version)
        if SIZE_ROWS[size] == 0:
            return base
        from faker import VERSION as faker_version

        key = self._key(version, "seed", SEEDER_VERSION, faker_version, str(seeder.seed), size, str(variant))
        directory = self.directory if not seeder.generators else self.scratch / f"custom-{seeder.token}"
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"v{version:04d}-{size}-{variant}-{key}.sqlite3"

        def build(partial: Path) -> None:
            database.copy_file(base, partial)
            conn = _connect_partial(partial)
            try:
                seeder.fill(
                    conn,
                    Schema.from_connection(conn, ignore=TABLES),
                    SIZE_ROWS[size],
                    variant,
                )
            finally:
                conn.close()

        return self._locked_build(target, build)
