"""The gate never crashes: random text and bytes as migrations and queries always end in exit
0, 1 or 2 with a message, never a traceback."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_tenantdb.cli import main

SQLISH = st.lists(
    st.sampled_from(
        [
            "CREATE",
            "TABLE",
            "t",
            "(",
            ")",
            "x",
            "INTEGER",
            ",",
            ";",
            "'",
            '"',
            "ALTER",
            "DROP",
            "COLUMN",
            "RENAME",
            "TO",
            "INSERT",
            "INTO",
            "VALUES",
            "SELECT",
            "*",
            "FROM",
            "UPDATE",
            "SET",
            "=",
            "1",
            "DELETE",
            "BEGIN",
            "END",
            "TRIGGER",
            "ON",
            "AFTER",
            "INDEX",
            "UNIQUE",
            "--",
            "\n",
            "/*",
            "*/",
            "VACUUM",
            "PRAGMA",
            "NULL",
            "NOT",
            "DEFAULT",
            "CHECK",
            "VIEW",
            "AS",
            "WHERE",
        ]
    ),
    max_size=40,
).map(" ".join)


def _run(migration: bytes, query: bytes, capsys: pytest.CaptureFixture[str], dialect: str = "sqlite") -> None:
    root = Path(tempfile.mkdtemp())
    try:
        (root / "migrations").mkdir()
        (root / "queries").mkdir()
        (root / "migrations" / "0001_base.sql").write_text("CREATE TABLE t (x INTEGER, y TEXT);")
        (root / "migrations" / "0002_fuzz.sql").write_bytes(migration)
        (root / "queries" / "0001.sql").write_bytes(query)
        (root / "pyproject.toml").write_text(f'[tool.tenantdb]\nqueries = "queries"\ndialect = "{dialect}"\n')
        code = main(["check", str(root), "--format", "json"])
        captured = capsys.readouterr()
        assert code in (0, 1, 2)
        assert "Traceback" not in captured.out + captured.err
        if code == 2:
            assert "error:" in captured.err
    finally:
        shutil.rmtree(root)


FUZZ = settings(
    max_examples=int(__import__("os").environ.get("TENANTDB_FUZZ", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(migration=SQLISH, query=SQLISH)
def test_sql_like_text(migration: str, query: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run(migration.encode(), query.encode(), capsys)


@FUZZ
@given(migration=st.text(), query=st.text())
def test_any_text(migration: str, query: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run(migration.encode("utf-8", "surrogatepass"), query.encode("utf-8", "surrogatepass"), capsys)


@FUZZ
@given(migration=st.binary(), query=st.binary())
def test_random_bytes(migration: bytes, query: bytes, capsys: pytest.CaptureFixture[str]) -> None:
    _run(migration, query, capsys)


@FUZZ
@given(migration=SQLISH, query=SQLISH)
def test_sql_like_text_postgres(migration: str, query: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run(migration.encode(), query.encode(), capsys, dialect="postgres")


NAMES = st.sampled_from(
    ["id", "email", "name", "user_id", "title", "nope", "users.id", "p.title", "*", "count(*)"]
)
TABLES = st.sampled_from(
    ["users", "posts p", "public.users", "active", "missing", "(SELECT id FROM users) s"]
)
QUERY = st.one_of(
    st.builds(
        "SELECT {} FROM {} {} WHERE {} = $1".format,
        st.lists(NAMES, min_size=1, max_size=3).map(", ".join),
        TABLES,
        st.sampled_from(["", "JOIN users ON users.id = p.user_id", "JOIN posts ON posts.user_id = users.id"]),
        NAMES,
    ),
    st.builds("INSERT INTO {} ({}) VALUES ($1)".format, TABLES, NAMES),
    st.builds("UPDATE {} SET {} = $1 WHERE {} = $2".format, TABLES, NAMES, NAMES),
    st.builds("DELETE FROM {} WHERE {} IN (SELECT {} FROM users)".format, TABLES, NAMES, NAMES),
)
STEP = st.lists(
    st.sampled_from(
        [
            "ALTER TABLE users DROP COLUMN name;",
            "ALTER TABLE posts ADD COLUMN email text;",
            "ALTER TABLE users RENAME TO members;",
            "ALTER TABLE posts RENAME COLUMN title TO headline;",
            "DROP VIEW active;",
            "CREATE VIEW active AS SELECT * FROM users;",
            "CREATE VIEW active2 AS SELECT nope FROM users;",
            "ALTER TABLE users ALTER COLUMN name SET NOT NULL;",
        ]
    ),
    min_size=1,
    max_size=3,
).map("\n".join)


@FUZZ
@given(step=STEP, queries=st.lists(QUERY, min_size=1, max_size=4))
def test_postgres_old_queries_never_crash(
    step: str, queries: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Query-shaped old code on a postgres schema with a view: sqlglot's resolution of every
    shape ends in findings or none, never in a crash."""
    root = Path(tempfile.mkdtemp())
    try:
        (root / "migrations").mkdir()
        (root / "queries").mkdir()
        (root / "migrations" / "0001_base.sql").write_text(
            "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, name text);\n"
            "CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), title text);\n"
            "CREATE VIEW active AS SELECT id, email FROM users;\n"
        )
        (root / "migrations" / "0002_step.sql").write_text(step)
        text = "".join(f"-- name: q{n}\n{sql};\n" for n, sql in enumerate(queries))
        (root / "queries" / "0001.sql").write_text(text)
        (root / "pyproject.toml").write_text('[tool.tenantdb]\nqueries = "queries"\ndialect = "postgres"\n')
        code = main(["check", str(root), "--format", "json"])
        captured = capsys.readouterr()
        assert code in (0, 1), captured.err
        assert "Traceback" not in captured.out + captured.err
    finally:
        shutil.rmtree(root)
