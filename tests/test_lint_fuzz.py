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
