"""Template cache (built once, hash-keyed, locked) and version stores."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError, TemplateBuildError
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import TableStore, UserVersionStore, version_store
from tests.conftest import SIMPLE, columns

Writer = Callable[..., Path]


def test_templates_are_built_once_and_reused(tmp_path: Path, simple_migrations: MigrationSet) -> None:
    first = TemplateCache(tmp_path, simple_migrations, UserVersionStore())
    head = first.schema_template(3)
    assert first.built == 4  # versions 0..3, each from the one before
    assert columns(head, "users") == ["id", "email", "name"]
    second = TemplateCache(tmp_path, simple_migrations, UserVersionStore())
    assert second.schema_template("head") == head
    assert second.schema_template(1) == first.schema_template(1)
    assert second.built == 0


def test_an_edited_step_never_uses_the_stale_template(tmp_path: Path, write_migrations: Writer) -> None:
    files = dict(SIMPLE)
    old = MigrationSet.from_path(write_migrations(files))
    old_head = TemplateCache(tmp_path / "cache", old, UserVersionStore()).schema_template(3)
    files["0003_posts.sql"] = files["0003_posts.sql"].replace("title TEXT NOT NULL", "title TEXT, body TEXT")
    new = MigrationSet.from_path(write_migrations(files))
    cache = TemplateCache(tmp_path / "cache", new, UserVersionStore())
    new_head = cache.schema_template(3)
    assert new_head != old_head
    assert cache.built == 1  # versions 0..2 were still valid
    assert columns(new_head, "posts") == ["id", "user_id", "title", "body"]


def test_a_step_that_fails_on_empty_database_is_reported(tmp_path: Path, write_migrations: Writer) -> None:
    path = write_migrations({"0001_a.sql": "CREATE TABLE a (x);", "0002_b.sql": "ALTER TABLE missing ADD y;"})
    cache = TemplateCache(tmp_path / "cache", MigrationSet.from_path(path), UserVersionStore())
    with pytest.raises(TemplateBuildError, match=r"0002_b.*0002_b.sql:1.*no such table: missing"):
        cache.schema_template(2)
    assert not [p for p in (tmp_path / "cache").iterdir() if ".building" in p.name]


def _build_in_process(cache_dir: str, migrations_dir: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    cache = TemplateCache(Path(cache_dir), MigrationSet.from_path(migrations_dir), UserVersionStore())
    cache.schema_template("head")
    queue.put(cache.built)


def test_parallel_processes_build_each_template_once(tmp_path: Path, write_migrations: Writer) -> None:
    migrations_dir = write_migrations(SIMPLE)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    procs = [
        context.Process(target=_build_in_process, args=(str(tmp_path / "c"), str(migrations_dir), queue))
        for _ in range(3)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    built = sorted(queue.get(timeout=5) for _ in procs)
    assert sum(built) == 4
    assert len(list((tmp_path / "c").glob("*.sqlite3"))) == 4


def test_table_store_and_user_version_store(tmp_path: Path, simple_migrations: MigrationSet) -> None:
    table = TemplateCache(tmp_path / "t", simple_migrations, TableStore()).schema_template(3)
    conn = sqlite3.connect(table)
    assert conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall() == [
        (1, "users"),
        (2, "name"),
        (3, "posts"),
    ]
    assert TableStore().read(conn) == 3 and UserVersionStore().read(conn) == 0
    plain = TemplateCache(tmp_path / "u", simple_migrations, UserVersionStore()).schema_template(2)
    assert UserVersionStore().read(sqlite3.connect(plain)) == 2


def test_stores_read_databases_made_elsewhere(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "foreign.sqlite3")
    assert TableStore().read(conn) == 0 and UserVersionStore().read(conn) == 0
    conn.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)")  # dbmate's layout
    conn.executemany("INSERT INTO schema_migrations VALUES (?)", [("20240101",), ("20240315",)])
    conn.execute("PRAGMA user_version = 12")
    assert TableStore().read(conn) == 20240315 and UserVersionStore().read(conn) == 12


def test_version_store_names() -> None:
    assert version_store("table").name == "table" and version_store("user_version").name == "user_version"
    with pytest.raises(ConfigError, match="needs the migration set"):
        version_store("alembic")
    with pytest.raises(ConfigError, match="must be one of"):
        version_store("flyway")


def test_a_long_history_builds_without_recursion(tmp_path: Path, write_migrations: Writer) -> None:
    files = {f"{n:04d}_t{n}.sql": f"CREATE TABLE t{n} (x);" for n in range(1, 1201)}
    migrations = MigrationSet.from_path(write_migrations(files))
    cache = TemplateCache(tmp_path / "cache", migrations, UserVersionStore())
    head = cache.schema_template("head")  # 1,201 templates, deeper than Python's recursion limit
    assert UserVersionStore().read(sqlite3.connect(head)) == 1200
    assert cache.built == 1201
