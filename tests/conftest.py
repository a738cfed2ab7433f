"""Shared helpers for pytest-tenantdb's own tests."""

from __future__ import annotations

import shutil
import sqlite3
import tomllib
from collections.abc import Callable
from pathlib import Path

import coverage  # noqa: F401
import pytest
import sqlglot  # noqa: F401

# Loaded once for the whole run: pytester's in-process runs drop the modules they import, and a
# second import of sqlglot (new expression classes) or of coverage's C tracer would not match
# what the surviving modules cached (parsed trees, tracers) from the first.
from pytest_tenantdb.fleet.fleet import FleetBuilder
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.schema import Schema
from pytest_tenantdb.versioning import version_store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example"
BROKEN = ROOT / "fixtures" / "broken"


def schema_from_sql(sql: str) -> Schema:
    """The Schema of an in-memory database made by ``sql``."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(sql)
    try:
        return Schema.from_connection(conn)
    finally:
        conn.close()


def apply_variant(project: Path, variant: str) -> None:
    """Turn a copy of the example at ``project`` into a broken variant (fixtures/broken/README.md)."""
    overlay = BROKEN / variant
    spec = overlay / "variant.toml"
    for edit in tomllib.loads(spec.read_text())["edit"] if spec.exists() else []:
        target = project / edit["file"]
        text = target.read_text()
        assert text.count(edit["find"]) == 1, f"{spec}: the text to edit is not in {edit['file']} once"
        target.write_text(text.replace(edit["find"], edit["replace"]))
    if (overlay / "migrations").is_dir():
        for file in (overlay / "migrations").iterdir():
            shutil.copy(file, project / "migrations" / file.name)


@pytest.fixture
def write_migrations(tmp_path: Path) -> Callable[..., Path]:
    """Write ``{file name: text or bytes}`` into a fresh migrations folder and return it."""

    def write(files: dict[str, str | bytes], folder: str = "migrations") -> Path:
        path = tmp_path / folder
        path.mkdir(exist_ok=True)
        for name, content in files.items():
            target = path / name
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        return path

    return write


SIMPLE = {
    "0001_users.sql": "-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);\n"
    "-- migrate:down\nDROP TABLE users;\n",
    "0002_name.sql": "-- migrate:up\nALTER TABLE users ADD COLUMN name TEXT;\n"
    "-- migrate:down\nALTER TABLE users DROP COLUMN name;\n",
    "0003_posts.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), "
    "title TEXT NOT NULL);\n",
}


@pytest.fixture
def simple_migrations(write_migrations: Callable[..., Path]) -> MigrationSet:
    return MigrationSet.from_path(write_migrations(SIMPLE))


@pytest.fixture(scope="session")
def example_migrations() -> MigrationSet:
    return MigrationSet.from_path(EXAMPLE / "migrations")


def make_builder(
    tmp_path: Path, migrations: MigrationSet, versioning: str = "user_version", **kw: object
) -> FleetBuilder:
    cache = TemplateCache(tmp_path / "cache", migrations, version_store(versioning, migrations))
    return FleetBuilder(tmp_path / "tenants", cache, **kw)  # type: ignore[arg-type]


def columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


@pytest.fixture
def real(tmp_path: Path, example_migrations: MigrationSet) -> Path:
    """A folder of real tenant files with every problem case (tests/realfolder.py)."""
    from tests.realfolder import make_real_folder

    return make_real_folder(tmp_path, example_migrations).folder


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A copy of the example project (its .pytest_cache is where scan keeps templates)."""
    target = tmp_path / "project"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".pytest_cache"))
    return target
