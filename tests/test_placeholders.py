"""Parameters of old app queries: every SQLite placeholder style is found (checked against
SQLite's own ``sqlite3_bind_parameter_count`` / ``_name``) and bound, a query that does not run
on its own version is TDB205 once, and dbmate's ``transaction:false`` is honoured."""

from __future__ import annotations

import ctypes
import ctypes.util
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_tenantdb.checks.builtin import old_code, query_params
from pytest_tenantdb.checks.context import CheckContext
from pytest_tenantdb.errors import CheckFailure, QueryParameterError
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.lint.engine import LintOptions, lint_project
from pytest_tenantdb.lint.findings import Finding
from pytest_tenantdb.lint.placeholders import binding, parameters
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.queries import QueryFolder
from pytest_tenantdb.versioning import UserVersionStore
from tests.conftest import make_builder

# -- the tokenizer, held to SQLite itself ---------------------------------------------------

_TABLE = 'CREATE TABLE t ("?" TEXT, "a$b" TEXT, "x:y" TEXT)'


class _SQLite:
    """SQLite's C API through ctypes: the parameter count and names of a prepared statement,
    which Python's sqlite3 does not expose."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.sqlite3_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.sqlite3_prepare_v2.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_void_p,
        ]
        lib.sqlite3_bind_parameter_count.argtypes = [ctypes.c_void_p]
        lib.sqlite3_bind_parameter_name.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.sqlite3_bind_parameter_name.restype = ctypes.c_char_p
        lib.sqlite3_finalize.argtypes = [ctypes.c_void_p]
        lib.sqlite3_step.argtypes = [ctypes.c_void_p]
        self.db = ctypes.c_void_p()
        assert lib.sqlite3_open(b":memory:", ctypes.byref(self.db)) == 0
        stmt = self._prepare(_TABLE)
        assert stmt is not None
        lib.sqlite3_step(stmt)
        lib.sqlite3_finalize(stmt)

    def _prepare(self, sql: str) -> int | None:
        stmt = ctypes.c_void_p()
        code = self.lib.sqlite3_prepare_v2(self.db, sql.encode(), -1, ctypes.byref(stmt), None)
        return stmt.value if code == 0 and stmt.value else None

    def slots(self, sql: str) -> list[str | None] | None:
        """The name of each parameter index 1..count (None: no name), or None if it does not prepare."""
        stmt = self._prepare(sql)
        if stmt is None:
            return None
        try:
            count = self.lib.sqlite3_bind_parameter_count(stmt)
            names = [self.lib.sqlite3_bind_parameter_name(stmt, i) for i in range(1, count + 1)]
            return [n.decode() if n is not None else None for n in names]
        finally:
            self.lib.sqlite3_finalize(stmt)


@pytest.fixture(scope="module")
def sqlite_c() -> _SQLite:
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("no libsqlite3 to compare with")
    return _SQLite(ctypes.CDLL(name))


def _ours(sql: str) -> list[str | None]:
    found = parameters(sql)
    names = {p.index: p.name for p in found.slots}
    return [names.get(i) for i in range(1, found.count + 1)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT ?",
        "SELECT ?, ?, ?",
        "SELECT ?3",
        "SELECT ?, ?5, ?",
        "SELECT ?, ?1, ?",
        "SELECT ?2, ?2, ?",
        "SELECT :a, @a, $a, #a, :a",
        "SELECT $a::b(c), $a::b, :x::y, @a(1)",
        "SELECT 'it''s ?', ?, ':a'",
        'SELECT "?", [?], `?`, "a$b", "x:y", ? FROM t',
        "SELECT ? -- ? :a\n, 1",
        "SELECT /* ? :a */ ?, 1 /* :b",
        "SELECT x'00', a$b, ? FROM t",
        "SELECT :été, :a1_b, ?",
        "SELECT ?1, :a",
        "SELECT :a, ?",
        "SELECT :a, ?1",
        "SELECT ?3, :a",
    ],
)
def test_parameters_are_what_sqlite_counts_and_names(sqlite_c: _SQLite, sql: str) -> None:
    expected = sqlite_c.slots(sql)
    assert expected is not None, f"the case does not prepare: {sql}"
    assert _ours(sql) == expected


_FRAGMENTS = [
    "?",
    *(f"?{n}" for n in range(1, 8)),
    ":a",
    ":b",
    "@a",
    "$a",
    "#a",
    "$a::b",
    "$a::b(c)",
    "'?'",
    "'it''s :a ?'",
    '"?"',
    "[?]",
    "`?`",
    '"a$b"',
    "a$b",
    "x'3f'",
    "1",
    "/* ? :a */ 2",
    "-- ? @a\n3",
]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=8))
def test_any_mix_of_styles_matches_sqlite(sqlite_c: _SQLite, parts: list[str]) -> None:
    sql = "SELECT " + ", ".join(parts) + " FROM t"
    expected = sqlite_c.slots(sql)
    assert expected is not None, sql
    assert _ours(sql) == expected, sql


def test_every_style_and_a_literal_question_mark_bind_and_run() -> None:
    """``?`` followed by ``?1`` names slot 1, so all five styles go in one mapping; Python's
    sqlite3 looks ``@at`` and ``$dollar`` up without their prefix."""
    conn = sqlite3.connect(":memory:")
    sql = "SELECT '?', ?, ?1, :name, @at, $dollar, :name -- ?\n"
    values = {"?1": 10, "name": "n", "at": "a", "dollar": "d"}
    bound = binding(sql, values)
    assert bound == {"1": 10, "name": "n", "at": "a", "dollar": "d"}
    assert conn.execute(sql, bound).fetchone() == ("?", 10, 10, "n", "a", "d", "n")
    assert conn.execute(sql, binding(sql)).fetchone() == ("?", None, None, None, None, None, None)


def test_numbered_parameters_bind_as_a_sequence_up_to_the_highest() -> None:
    conn = sqlite3.connect(":memory:")
    sql = "SELECT ?3, ?1, '?5'"
    assert binding(sql, {"?1": 1, "?3": 3}) == (1, None, 3)
    assert conn.execute(sql, binding(sql, {"?1": 1, "?3": 3})).fetchone() == (3, 1, "?5")
    sql = "SELECT ?, '?', ?"
    assert conn.execute(sql, binding(sql, {"?2": "b"})).fetchone() == (None, "?", "b")
    assert binding("SELECT 1") == ()


def test_named_and_bare_positional_parameters_cannot_be_bound_together() -> None:
    with pytest.raises(QueryParameterError, match=r"positional parameters \(\?\) with named ones \(:a\)"):
        binding("SELECT :a, ?")
    with pytest.raises(QueryParameterError, match=r"\(\?3\) with named ones \(@b\)"):
        binding("SELECT ?3, @b")  # ?1 and ?2 have no name: a mapping cannot reach them
    assert binding("SELECT ?1, :a", {"?1": 1, "a": 2}) == {"1": 1, "a": 2}  # every slot named


def test_query_params_are_the_keys_hypothesis_draws() -> None:
    sqls = ["SELECT * FROM t WHERE a = ? AND b = '?:x' AND c = @who", "SELECT $id, :id -- :nope"]
    assert query_params(sqls) == ("?1", "id", "who")


# -- the checker on queries of every style -----------------------------------------------

BASE = (
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, age INTEGER);\n"
    "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT);\n"
)


def _lint(root: Path, steps: dict[str, str], queries: str, window: int = 1) -> list[Finding]:
    (root / "migrations").mkdir(parents=True)
    (root / "queries").mkdir()
    (root / "migrations" / "0001_base.sql").write_text(BASE)
    for name, sql in steps.items():
        (root / "migrations" / name).write_text(sql)
    (root / "queries" / "0001.sql").write_text(queries)
    migrations = MigrationSet.from_path(root / "migrations")
    templates = TemplateCache(root / "cache", migrations, UserVersionStore())
    return lint_project(migrations, templates, QueryFolder(root / "queries"), LintOptions(window=window))


def _by_query(found: list[Finding]) -> list[tuple[str, int, str]]:
    return sorted((f.code, f.line, f.step) for f in found)


def test_positional_select_star_is_compared(tmp_path: Path) -> None:
    queries = "-- name: star\nSELECT * FROM users WHERE id = ? AND email <> '?';\n"
    found = _lint(tmp_path, {"0002_tier.sql": "ALTER TABLE users ADD COLUMN tier TEXT;"}, queries)
    assert _by_query(found) == [("TDB204", 2, "0002_tier")]
    assert "now ['id', 'email', 'name', 'age', 'tier']" in found[0].message


def test_queries_of_every_style_are_checked(tmp_path: Path) -> None:
    queries = (
        "-- name: literal\nSELECT age FROM users WHERE email = '?' AND id = ?;\n"
        "-- name: at\nSELECT age FROM users WHERE id = @id;\n"
        "-- name: dollar\nSELECT age FROM users WHERE email = $email;\n"
        "-- name: numbered\nSELECT age FROM users WHERE id = ?2 OR id = ?1;\n"
        "-- name: colon\nSELECT title FROM posts WHERE user_id = :uid;\n"
    )
    found = _lint(tmp_path, {"0002_drop.sql": "ALTER TABLE users DROP COLUMN age;"}, queries)
    assert [(f.code, f.line) for f in found if f.code.startswith("TDB2")] == [
        ("TDB201", 2),
        ("TDB201", 4),
        ("TDB201", 6),
        ("TDB201", 8),
    ]
    assert all("no such column: age" in f.message for f in found if f.code == "TDB201")


def test_a_query_broken_on_its_own_version_is_reported_once(tmp_path: Path) -> None:
    queries = (
        "-- name: typo\nSELECT id FROM userz WHERE id = ?;\n"
        "-- name: fine\nSELECT email FROM users;\n"
        "-- name: mixed\nSELECT email FROM users WHERE id = :id OR id = ?;\n"
    )
    steps = {
        "0002_a.sql": "CREATE INDEX users_email ON users(email);",
        "0003_b.sql": "ALTER TABLE posts ADD COLUMN body TEXT;",
        "0004_c.sql": "CREATE INDEX posts_user ON posts(user_id);",
    }
    found = _lint(tmp_path, steps, queries)
    assert _by_query(found) == [("TDB001", 6, "0002_a"), ("TDB205", 2, "0002_a")]
    typo = next(f for f in found if f.code == "TDB205")
    assert "no such table: userz" in typo.message and "app version 1" in typo.message
    assert "broken by" not in typo.message  # not the step's doing
    mixed = next(f for f in found if f.code == "TDB001")
    assert "mixes positional parameters (?) with named ones (:id)" in mixed.message


def test_a_query_the_migration_breaks_is_not_also_tdb205(tmp_path: Path) -> None:
    queries = "-- name: old\nSELECT age FROM users;\n"
    steps = {"0002_drop.sql": "ALTER TABLE users DROP COLUMN age;", "0003_b.sql": "CREATE TABLE c (x);"}
    found = _lint(tmp_path, steps, queries)
    assert _by_query(found) == [("TDB102", 1, "0002_drop"), ("TDB201", 2, "0002_drop")]


def test_postgres_placeholders_are_parameters_not_columns(tmp_path: Path) -> None:
    root = tmp_path / "pg"
    (root / "migrations").mkdir(parents=True)
    (root / "queries").mkdir()
    (root / "migrations" / "0001_base.sql").write_text(
        "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, age int);\n"
    )
    (root / "migrations" / "0002_add.sql").write_text("ALTER TABLE users ADD COLUMN born date;")
    (root / "queries" / "0001.sql").write_text(
        "-- name: dollar\nSELECT age FROM users WHERE id = $1 AND email <> '?';\n"
        "-- name: pyformat\nSELECT age FROM users WHERE id = %s OR email = %(email)s;\n"
        "-- name: colon\nUPDATE users SET age = :age WHERE id = :id;\n"
        "-- name: typo\nSELECT id FROM userz WHERE id = $1;\n"
    )
    migrations = MigrationSet.from_path(root / "migrations")
    templates = TemplateCache(root / "cache", migrations, UserVersionStore())
    options = LintOptions(dialect="postgres")
    found = lint_project(migrations, templates, QueryFolder(root / "queries"), options)
    assert _by_query(found) == [("TDB205", 8, "0002_add")]
    assert "no such table: userz" in found[0].message


# -- the old_code check binds every style ---------------------------------------------------


def _context(tmp_path: Path, write: Callable[..., Path], queries: str) -> CheckContext:
    migrations = MigrationSet.from_path(
        write(
            {
                "0001_base.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, age INTEGER);",
                "0002_check.sql": "ALTER TABLE users RENAME TO old_users;\n"
                "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, age INTEGER CHECK (age >= 0));\n"
                "INSERT INTO users SELECT * FROM old_users;\nDROP TABLE old_users;",
            }
        )
    )
    (tmp_path / "queries").mkdir(parents=True)
    (tmp_path / "queries" / "0001.sql").write_text(queries)
    templates = TemplateCache(tmp_path / "cache", migrations, UserVersionStore())
    return CheckContext(templates=templates, queries=QueryFolder(tmp_path / "queries"))


def test_old_code_draws_positional_values(tmp_path: Path, write_migrations: Callable[..., Path]) -> None:
    ctx = _context(
        tmp_path, write_migrations, "-- name: add\nINSERT INTO users (email, age) VALUES (?, @age);\n"
    )
    body = old_code(1)
    with pytest.raises(CheckFailure, match=r"query add \(.*\) cannot be run, so it was not checked"):
        body(ctx, ctx.fresh(1), {})
    ctx = _context(
        tmp_path / "b", write_migrations, "-- name: add\nINSERT INTO users (email, age) VALUES (?, ?);\n"
    )
    body(ctx, ctx.fresh(1), {"?1": "a@b", "?2": 3})  # a value both versions take
    with pytest.raises(CheckFailure, match="CHECK constraint failed"):
        body(ctx, ctx.fresh(1), {"?1": "a@b", "?2": -1})  # the new CHECK refuses what v1 wrote


# -- dbmate's transaction:false --------------------------------------------------------------


@pytest.mark.parametrize(
    ("marker", "transactional"),
    [
        ("-- migrate:up transaction:false", False),
        ("-- migrate:up foo:bar transaction:false", False),
        ("-- migrate:up transaction:true", True),
        ("-- migrate:up transaction:False", True),  # dbmate compares the value exactly
        ("-- migrate:up", True),
    ],
)
def test_dbmate_transaction_option(
    tmp_path: Path, write_migrations: Callable[..., Path], marker: str, transactional: bool
) -> None:
    folder = write_migrations(
        {
            "0001_a.sql": "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down\nDROP TABLE a;\n",
            "0002_vacuum.sql": f"{marker}\nVACUUM;\n-- migrate:down\nSELECT 1;\n",
        }
    )
    migrations = MigrationSet.from_path(folder)
    assert migrations.step(2).transactional is transactional
    templates = TemplateCache(tmp_path / "cache", migrations, UserVersionStore())
    found = lint_project(migrations, templates, None, LintOptions())
    assert ("TDB113" in {f.code for f in found}) is transactional
    fleet = make_builder(tmp_path / "fleet", migrations)(versions={1: 1})
    report = fleet.migrate()
    assert report.ok is not transactional  # VACUUM fails inside the migrator's transaction
    if not transactional:
        assert fleet.versions() == {2: 1}


def test_dbmate_transaction_option_on_the_down_section(write_migrations: Callable[..., Path]) -> None:
    """A step runs with or without a transaction as a whole: either section's option counts."""
    folder = write_migrations(
        {"0001_a.sql": "-- migrate:up\nCREATE TABLE a (x);\n-- migrate:down transaction:false\nVACUUM;\n"}
    )
    assert MigrationSet.from_path(folder).step(1).transactional is False
