"""The checker's walker: each step on a scratch database of what it touches must give exactly the
schema a tenant gets by running the whole history in one database."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.walker import IGNORED, Walker
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.schema import Schema, SchemaDiff
from pytest_tenantdb.versioning import UserVersionStore
from tests.conftest import EXAMPLE

TRICKY = {
    "0001_base.sql": """
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT);
        CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT);
        CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT);
        CREATE TABLE unrelated (id INTEGER PRIMARY KEY, x TEXT);
        CREATE INDEX posts_user ON posts(user_id);
        CREATE VIEW user_posts AS SELECT users.name, posts.title FROM users JOIN posts ON posts.user_id = users.id;
        CREATE TRIGGER posts_audit AFTER INSERT ON posts BEGIN INSERT INTO audit (what) VALUES (NEW.title); END;
    """,
    # SQLite rewrites the view, the trigger and the foreign key of posts
    "0002_rename.sql": "ALTER TABLE users RENAME TO members;\nALTER TABLE posts RENAME COLUMN title TO headline;",
    # a 12-step rebuild of posts that keeps its index, trigger and view
    "0003_rebuild.sql": """
        DROP VIEW user_posts;
        CREATE TABLE posts_new (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES members(id),
                                headline TEXT, body TEXT DEFAULT '');
        INSERT INTO posts_new (id, user_id, headline) SELECT id, user_id, headline FROM posts;
        DROP TABLE posts;
        ALTER TABLE posts_new RENAME TO posts;
        CREATE INDEX posts_user ON posts(user_id);
        CREATE TRIGGER posts_audit AFTER INSERT ON posts BEGIN INSERT INTO audit (what) VALUES (NEW.headline); END;
        CREATE VIEW user_posts AS SELECT members.name, posts.headline FROM members JOIN posts ON posts.user_id = members.id;
    """,
    "0004_python.py": (
        "def up(conn):\n"
        "    conn.execute('ALTER TABLE unrelated ADD COLUMN y TEXT')\n"
        "    conn.execute('CREATE INDEX unrelated_y ON unrelated(y)')\n"
    ),
    "0005_drop.sql": "DROP VIEW user_posts;\nALTER TABLE members DROP COLUMN name;\nDROP TABLE audit;",
}


VIRTUAL = {
    "0001_docs.sql": "CREATE VIRTUAL TABLE docs USING fts5(body);\nCREATE TABLE t (id INTEGER PRIMARY KEY);",
    "0002_fill.sql": "INSERT INTO docs (body) VALUES ('hello');\nALTER TABLE t ADD COLUMN x TEXT;",
    "0003_drop.sql": "DROP TABLE docs;",  # its shadow tables (docs_data, ...) go with it
}


def _fts5() -> bool:
    try:
        sqlite3.connect(":memory:").execute("CREATE VIRTUAL TABLE v USING fts5(x)")
    except sqlite3.Error:
        return False
    return True


def _migrations(write_migrations: Callable[..., Path], files: dict[str, str]) -> MigrationSet:
    return MigrationSet.from_path(write_migrations(files))


def _walker(migrations: MigrationSet, tmp_path: Path) -> Walker:
    return Walker(migrations, TemplateCache(tmp_path / "cache", migrations, UserVersionStore()))


def _one_database_schemas(migrations: MigrationSet, tmp_path: Path) -> dict[int, Schema]:
    """The schema after each version when the whole history runs in one database."""
    conn = sqlite3.connect(tmp_path / "one.sqlite3", isolation_level=None)
    schemas = {}
    try:
        for step in migrations:
            run_plan(conn, migrations, [(step, "up")], UserVersionStore())
            schemas[step.version] = Schema.from_connection(conn, ignore=IGNORED)
    finally:
        conn.close()
    return schemas


def _same(walked: Schema, real: Schema) -> None:
    assert not SchemaDiff.between(walked, real), str(SchemaDiff.between(walked, real))
    assert {n: t.sql for n, t in walked.tables.items()} == {n: t.sql for n, t in real.tables.items()}
    assert walked.views == real.views
    assert walked.triggers == real.triggers


@pytest.mark.parametrize("history", ["tricky", "virtual", "example"])
def test_walked_schema_equals_one_database_run(
    history: str, write_migrations: Callable[..., Path], tmp_path: Path
) -> None:
    if history == "tricky":
        migrations = _migrations(write_migrations, TRICKY)
    elif history == "virtual":
        if not _fts5():
            pytest.skip("this SQLite has no fts5")
        migrations = _migrations(write_migrations, VIRTUAL)
    else:
        migrations = MigrationSet.from_path(EXAMPLE / "migrations")
    real = _one_database_schemas(migrations, tmp_path)
    walker = _walker(migrations, tmp_path)
    for step in migrations:
        _same(walker.apply(step), real[step.version])
    if history == "tricky":  # the renames reached every object that mentions the old names
        assert (
            "members" in real[2].views["user_posts"].sql and "headline" in real[2].triggers["posts_audit"].sql
        )
        assert real[2].tables["posts"].foreign_keys[0].ref_table == "members"


def test_each_step_runs_on_what_it_touches_only(
    write_migrations: Callable[..., Path], tmp_path: Path
) -> None:
    migrations = _migrations(write_migrations, TRICKY)
    walker = _walker(migrations, tmp_path)
    walker.at(1)
    closure = walker._closure  # the rule under test: which objects a step's scratch database holds
    # posts: its index and trigger, what the trigger writes (audit), the table its FK points to
    assert closure({"posts"}, set()) == {
        ("table", "posts"),
        ("index", "posts_user"),
        ("trigger", "posts_audit"),
        ("table", "audit"),
        ("table", "users"),
    }
    assert closure({"unrelated"}, set()) == {("table", "unrelated")}
    # a rename also takes every object that mentions the table, whatever the step names
    renamed = closure({"users", "members"}, {"users"})
    assert {("view", "user_posts"), ("table", "posts"), ("trigger", "posts_audit")} <= renamed
    assert ("table", "unrelated") not in renamed


def test_a_step_that_breaks_a_view_fails_as_on_a_tenant(
    write_migrations: Callable[..., Path], tmp_path: Path
) -> None:
    files = {
        "0001_base.sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT);\n"
        "CREATE TABLE other (id INTEGER PRIMARY KEY);\nCREATE VIEW v AS SELECT a FROM t;",
        "0002_drop.sql": "ALTER TABLE t DROP COLUMN a;",
    }
    migrations = _migrations(write_migrations, files)
    walker = _walker(migrations, tmp_path)
    walker.at(1)
    with pytest.raises(StepFailure, match="no such column: a"):
        walker.apply(migrations.step(2))
    assert set(walker.schema.tables) == {"t", "other"}  # the model is left as it was


def test_old_queries_are_prepared_against_what_they_reach(
    write_migrations: Callable[..., Path], tmp_path: Path
) -> None:
    migrations = _migrations(write_migrations, TRICKY)
    walker = _walker(migrations, tmp_path)
    walker.at(1)
    conn = walker.database(["SELECT name, title FROM user_posts", "INSERT INTO posts (title) VALUES (?)"])
    try:
        conn.execute("EXPLAIN SELECT name, title FROM user_posts")
        conn.execute("EXPLAIN INSERT INTO posts (title) VALUES (?)", (None,))  # its trigger too
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            conn.execute("EXPLAIN SELECT * FROM unrelated")
    finally:
        conn.close()


def test_a_view_broken_earlier_fails_a_later_rename_as_on_a_tenant(
    write_migrations: Callable[..., Path], tmp_path: Path
) -> None:
    """SQLite re-checks every view on a rename, so a view an earlier step broke (its table was
    dropped) makes an unrelated rename fail on every tenant: the walk must fail it too."""
    files = {
        "0001_base.sql": "CREATE TABLE a (id INTEGER PRIMARY KEY);\nCREATE TABLE b (id INTEGER PRIMARY KEY);\n"
        "CREATE TABLE c (id INTEGER PRIMARY KEY);\nCREATE VIEW va AS SELECT id FROM a;",
        "0002_drop.sql": "DROP TABLE a;",
        "0003_index.sql": "CREATE INDEX c_id ON c(id);",  # fine: no rename
        "0004_rename.sql": "ALTER TABLE b RENAME TO bb;",
    }
    migrations = _migrations(write_migrations, files)
    conn = sqlite3.connect(tmp_path / "one.sqlite3", isolation_level=None)
    with pytest.raises(StepFailure, match="error in view va") as real:
        run_plan(conn, migrations, migrations.plan(0, 4), UserVersionStore())
    conn.close()
    walker = _walker(migrations, tmp_path)
    walker.at(3)
    with pytest.raises(StepFailure, match="error in view va") as walked:
        walker.apply(migrations.step(4))
    assert walked.value.step == real.value.step == "0004_rename"


def test_a_cached_template_is_a_starting_point(write_migrations: Callable[..., Path], tmp_path: Path) -> None:
    """``--base`` after a long history: the walk starts from the template the plugin cached."""
    migrations = _migrations(write_migrations, TRICKY)
    templates = TemplateCache(tmp_path / "cache", migrations, UserVersionStore())
    real = _one_database_schemas(migrations, tmp_path)
    templates.schema_template(3)
    walker = Walker(migrations, templates)
    _same(walker.at(3), real[3])
    _same(walker.apply(migrations.step(4)), real[4])  # the lookups were rebuilt from the template
    _same(walker.apply(migrations.step(5)), real[5])


def test_a_schema_that_cannot_be_rebuilt_is_a_step_failure(
    write_migrations: Callable[..., Path], tmp_path: Path
) -> None:
    migrations = _migrations(write_migrations, TRICKY)
    walker = _walker(migrations, tmp_path)
    walker.at(1)
    broken = replace(walker.schema.tables["posts"], sql="CREATE TABLE posts (")
    walker.schema = replace(walker.schema, tables={**walker.schema.tables, "posts": broken})
    with pytest.raises(StepFailure, match="could not be rebuilt") as failure:
        walker.apply(migrations.step(2))
    assert failure.value.step == "0002_rename"


STATEMENTS = [
    "ALTER TABLE users ADD COLUMN nick TEXT",
    "ALTER TABLE users DROP COLUMN name",
    "ALTER TABLE users RENAME COLUMN name TO full_name",
    "ALTER TABLE users RENAME TO members",
    "ALTER TABLE members RENAME TO users",
    "ALTER TABLE posts ADD COLUMN body TEXT DEFAULT ''",
    "ALTER TABLE posts RENAME COLUMN title TO headline",
    "CREATE INDEX IF NOT EXISTS posts_title ON posts(title)",
    "DROP INDEX IF EXISTS posts_user",
    "CREATE VIEW IF NOT EXISTS titles AS SELECT title FROM posts",
    "CREATE VIEW IF NOT EXISTS names AS SELECT name FROM users",
    "DROP VIEW IF EXISTS titles",
    "DROP VIEW IF EXISTS user_posts",
    "DROP TABLE IF EXISTS audit",
    "CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, what TEXT)",
    "DROP TRIGGER IF EXISTS posts_audit",
    "CREATE TRIGGER IF NOT EXISTS users_touch AFTER UPDATE ON users BEGIN UPDATE posts SET title = title; END",
    "INSERT INTO posts (user_id, title) VALUES (1, 'x')",
    "CREATE TABLE tags (id INTEGER PRIMARY KEY, post_id INTEGER REFERENCES posts(id), label TEXT)",
    "DROP TABLE IF EXISTS unrelated",
]


@settings(
    max_examples=int(os.environ.get("TENANTDB_FUZZ", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=st.lists(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=3), min_size=1, max_size=6))
def test_any_history_walks_like_one_database(
    steps: list[list[str]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Random histories on the tricky base: the walk gives the same schema after every step as
    one database, and fails (or not) at the same step. (It found two gaps while it was written:
    a view created broken, and a view broken by an earlier rename, both fail later renames.)"""
    folder = tmp_path_factory.mktemp("history")
    (folder / "migrations").mkdir()
    (folder / "migrations" / "0001_base.sql").write_text(TRICKY["0001_base.sql"])
    for n, statements in enumerate(steps, start=2):
        (folder / "migrations" / f"{n:04d}_step.sql").write_text(";\n".join(statements) + ";\n")
    migrations = MigrationSet.from_path(folder / "migrations")
    walker = _walker(migrations, folder)
    conn = sqlite3.connect(folder / "one.sqlite3", isolation_level=None)
    try:
        for step in migrations:
            try:
                run_plan(conn, migrations, [(step, "up")], UserVersionStore())
            except StepFailure as real:
                with pytest.raises(StepFailure) as walked:
                    walker.apply(step)
                # when several views or triggers are broken SQLite names the first it checks, and
                # the scratch database lists them in another order: compare the kind of error
                assert walked.value.error == real.error or all(
                    e.startswith("error in ") for e in (walked.value.error, real.error)
                )
                return
            _same(walker.apply(step), Schema.from_connection(conn, ignore=IGNORED))
    finally:
        conn.close()
