"""MigrationSet: layouts, hashes, version names and every bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError, MigrationSetError
from pytest_tenantdb.migrations import MigrationSet, PythonStep, SqlStep
from pytest_tenantdb.migrations.statements import split_statements

Writer = Callable[..., Path]


def test_split_statements_keeps_triggers_and_lines() -> None:
    script = (
        "-- leading comment\n"
        "CREATE TABLE a (x);\n"
        "\n"
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n"
        "  UPDATE a SET x = 1;\n"
        "  UPDATE a SET x = 2;\n"
        "END;\n"
        "INSERT INTO a VALUES (';')  -- semicolon in a string\n"
        ";\n"
        "SELECT 1"
    )
    statements = split_statements(script)
    assert [s.line for s in statements] == [2, 4, 8, 10]
    assert statements[1].sql.endswith("END;")
    assert statements[2].sql.startswith("INSERT INTO a VALUES (';')")
    assert statements[3].sql == "SELECT 1"


def test_split_statements_ignores_comment_only_text() -> None:
    assert split_statements("-- nothing\n/* block */\n\n") == []


def test_loads_all_three_layouts(write_migrations: Writer) -> None:
    path = write_migrations(
        {
            "0001_users.sql": "-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n",
            "0002_posts.up.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY);",
            "0002_posts.down.sql": "DROP TABLE posts;",
            "0003_backfill.py": "def up(conn):\n    conn.execute('INSERT INTO users DEFAULT VALUES')\n",
            "0005_plain.sql": "CREATE INDEX i ON posts(id);",
            "README.md": "ignored",
            "__init__.py": "",
        }
    )
    migrations = MigrationSet.from_path(path)
    assert migrations.versions == (1, 2, 3, 5)
    assert migrations.head == 5
    assert migrations.gaps == (range(4, 5),) and migrations.gaps_text() == "4"
    kinds = [type(s) for s in migrations]
    assert kinds == [SqlStep, SqlStep, PythonStep, SqlStep]
    assert [s.has_down for s in migrations] == [True, True, False, False]
    assert migrations[0].label == "0001_users"
    users = migrations.step(1)
    assert isinstance(users, SqlStep)
    assert users.up[0].line == 2 and users.down is not None and users.down[0].line == 4
    assert "MigrationSet(" in repr(migrations) and len(migrations) == 4


def test_hashes_change_only_from_the_edited_step_on(write_migrations: Writer) -> None:
    files = {"0001_a.sql": "CREATE TABLE a (x);", "0002_b.sql": "CREATE TABLE b (x);"}
    before = MigrationSet.from_path(write_migrations(files))
    files["0002_b.sql"] = "CREATE TABLE b (x, y);"
    after = MigrationSet.from_path(write_migrations(files))
    assert before.prefix_hash(1) == after.prefix_hash(1)
    assert before.prefix_hash(2) != after.prefix_hash(2)
    assert before.checksum != after.checksum


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"0001_a.sql": "SELECT 1;", "1_b.sql": "SELECT 1;"}, "duplicate version 1"),
        ({"0001_a.sql": "SELECT 1;", "0001_a.up.sql": "SELECT 1;"}, "duplicate version 1"),
        ({"0001_a.py": "def up(c): pass", "0001_a.sql": "SELECT 1;"}, "duplicate version 1"),
        ({"0001_a.sql": "SELECT 1;", "0001_a.py": "def up(c): pass"}, "duplicate version 1"),
        (
            {
                "0001_a.up.sql": "SELECT 1;",
                "0001_a.up.sql.bak": "x",
                "create_users.sql": "SELECT 1;",
            },
            "has no version",
        ),
        ({"0001_a.sql": b"SELECT '\xff';"}, "not valid UTF-8"),
        ({"0001_a.sql": b"SELECT 1;\nSELECT '\x00';"}, r"0001_a.sql:2: migration file contains a NUL byte"),
        ({"0001_a.sql": "-- migrate:down\nDROP TABLE a;"}, "no '-- migrate:up'"),
        ({"0001_a.sql": "SELECT 1;\n-- migrate:up\nSELECT 2;"}, "SQL before the first"),
        ({"0001_a.sql": "-- migrate:up\nSELECT 1;\n-- migrate:up\nSELECT 2;"}, "more than one"),
        ({"0001_a.down.sql": "DROP TABLE a;"}, "down migration without an up file"),
        ({"0001_a.py": "x = 1\n"}, r"must define a function up\(conn\)"),
        ({"0001_a.py": "def up(conn)\n    pass\n"}, "does not compile"),
        ({"0001_a.py": "raise RuntimeError('boom')\n"}, "RuntimeError: boom"),
        ({"0000_a.sql": "SELECT 1;"}, "reserved for the empty database"),
    ],
)
def test_bad_migration_folders_raise_clear_errors(
    write_migrations: Writer, files: dict[str, str], message: str
) -> None:
    path = write_migrations(files)
    with pytest.raises(MigrationSetError, match=message):
        MigrationSet.from_path(path)


def test_non_utf8_error_names_file_and_line(write_migrations: Writer) -> None:
    path = write_migrations({"0001_a.sql": b"SELECT 1;\nSELECT '\xe9';\n"})
    with pytest.raises(MigrationSetError) as info:
        MigrationSet.from_path(path)
    assert "0001_a.sql:2" in str(info.value)


def test_unreadable_file(write_migrations: Writer, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_migrations({"0001_a.sql": "SELECT 1;"})

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(MigrationSetError, match="cannot read migration file"):
        MigrationSet.from_path(path)


def test_missing_directory_says_how_to_configure(tmp_path: Path) -> None:
    with pytest.raises(MigrationSetError, match=r"Set migrations in \[tool.tenantdb\]"):
        MigrationSet.from_path(tmp_path / "nope")


def test_a_file_is_not_a_migration_source(tmp_path: Path) -> None:
    file = tmp_path / "x.sql"
    file.write_text("SELECT 1;")
    with pytest.raises(MigrationSetError, match="is no known layout") as error:
        MigrationSet.from_path(file)
    # the error lists every layout it looked for
    for looked_for in ("django:app_label", "module:attribute", "alembic.ini", "numbered SQL"):
        assert looked_for in str(error.value)


def test_resolve_version_names(simple_migrations: MigrationSet) -> None:
    m = simple_migrations
    assert [m.resolve(x) for x in ("head", "head-1", "head - 2", "oldest", "empty", "2", 3)] == [
        3,
        2,
        1,
        1,
        0,
        2,
        3,
    ]
    assert m.resolve("head-3") == 0
    for bad in ("head-4", "heady", "latest", 7, True):
        with pytest.raises(ConfigError):
            m.resolve(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="no migration step has version 9"):
        m.step(9)


def test_plan_goes_up_and_down(simple_migrations: MigrationSet) -> None:
    up = simple_migrations.plan(1, 3)
    assert [(s.version, d) for s, d in up] == [(2, "up"), (3, "up")]
    down = simple_migrations.plan(3, 1)
    assert [(s.version, d) for s, d in down] == [(3, "down"), (2, "down")]
    assert simple_migrations.plan(2, 2) == []


def test_empty_set_has_head_zero() -> None:
    empty = MigrationSet([])
    assert empty.head == 0 and empty.resolve("oldest") == 0 and empty.gaps == ()


def test_no_transaction_marker(write_migrations: Writer) -> None:
    path = write_migrations(
        {
            "0001_a.sql": "CREATE TABLE a (x);",
            "0002_vacuum.sql": "-- tenantdb: no-transaction\nVACUUM;",
            "0003_b.up.sql": "-- tenantdb: no-transaction\nVACUUM;",
            "0004_py.py": "TRANSACTIONAL = False\ndef up(conn):\n    conn.execute('VACUUM')\n",
        }
    )
    assert [s.transactional for s in MigrationSet.from_path(path)] == [True, False, False, False]


def test_split_statements_on_one_line_and_block_comments() -> None:
    statements = split_statements("SELECT 1; SELECT 2; -- tail\n/* c; d */ SELECT 3;")
    assert [(s.sql, s.line) for s in statements] == [
        ("SELECT 1;", 1),
        ("SELECT 2;", 1),
        ("SELECT 3;", 2),
    ]


def test_a_registered_source_takes_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seam for Alembic/Django sources: callers keep using MigrationSet.from_path."""
    from pytest_tenantdb import migrations as module
    from pytest_tenantdb.migrations.statements import Statement

    class OneTableSource:
        name = "one-table"

        looked_for = "a .onetable file"
        versioning = None

        def detect(self, spec: str, path: Path) -> bool:
            return path.suffix == ".onetable"

        def load(self, spec: str, path: Path) -> list[SqlStep]:
            return [SqlStep(1, "only", path, (Statement(f"CREATE TABLE {path.stem} (x);", 1),))]

    monkeypatch.setattr(module, "_SOURCES", list(module._SOURCES))
    module.register_source(OneTableSource())
    source = tmp_path / "things.onetable"
    source.write_text("")
    loaded = MigrationSet.from_path(source)
    assert loaded.head == 1 and loaded[0].up[0].sql == "CREATE TABLE things (x);"  # type: ignore[attr-defined]


def test_a_huge_version_number_makes_one_gap_not_that_many(write_migrations: Callable[..., Path]) -> None:
    files = {"0001_a.sql": "CREATE TABLE a (x);", "99999999999999999999_b.sql": "CREATE TABLE b (x);"}
    migrations = MigrationSet.from_path(write_migrations(files))
    assert migrations.head == 99999999999999999999
    assert migrations.gaps == (range(2, 99999999999999999999),)
    assert migrations.gaps_text() == "2-99999999999999999998"


class _Watched(str):
    """A script that adds up how many characters the splitter reads through str methods."""

    read = 0

    def count(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
        _Watched.read += (end if end is not None else len(self)) - (start or 0)
        return str.count(self, sub, start, end)

    def __getitem__(self, key: object) -> str:  # type: ignore[override]
        if isinstance(key, slice):
            _Watched.read += len(range(*key.indices(len(self))))
        return str.__getitem__(self, key)  # type: ignore[index]


def test_splitting_reads_each_character_a_bounded_number_of_times() -> None:
    """Line numbers counted from the top for every statement, or ``complete_statement`` asked
    about an ever longer prefix at every ``;`` in a string, made a 1 MB step take 13 s."""
    many = "INSERT INTO t VALUES (1, 'a;b');\n-- a ; comment\n" * 2000
    one = "INSERT INTO t VALUES " + ", ".join(f"({n}, ';')" for n in range(2000)) + ";\n"
    script = _Watched(many + one + "CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;\n")
    _Watched.read = 0
    statements = split_statements(script)
    assert len(statements) == 2002 and statements[-1].line == 4002 and statements[-1].sql.endswith("END;")
    assert statements[2000].sql.startswith("INSERT INTO t VALUES (0, ';')")
    assert _Watched.read <= 3 * len(script)


@pytest.mark.parametrize("seed", range(3))
def test_statement_ends_agree_with_sqlite(seed: int) -> None:
    import random
    import sqlite3

    from pytest_tenantdb.migrations.statements import statement_ends

    parts = [";", " ", "\n", "'", '"', "`", "[", "]", "/*", "*/", "--", "-", "/", "CREATE", "temp",
             "TEMPORARY", "trigger", "BEGIN", "END", "end", "EXPLAIN", "x", "$a", "é", "\r", "\v", "endx"]  # fmt: skip
    rng = random.Random(seed)
    for _ in range(3000):
        script = "".join(rng.choice(parts) for _ in range(rng.randrange(25)))
        expected = [n + 1 for n, c in enumerate(script) if c == ";"]
        start, ends = 0, []
        for end in expected:  # what asking SQLite at each ';' gives (the old, quadratic way)
            if sqlite3.complete_statement(script[start:end]):
                ends.append(end)
                start = end
        assert list(statement_ends(script)) == ends, script
