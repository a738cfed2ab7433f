"""``--tenantdb-record``: every connection a test opens on a tenant, each query once, literals as ``?``."""

from __future__ import annotations

import importlib
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import BROKEN, EXAMPLE, apply_variant

pytest_plugins = ["pytester"]

literals = importlib.import_module("pytest_tenantdb.checks.literals")

MYAPP = """
import sqlite3

from sqlalchemy import create_engine, text


def project_names(path, owner_id):
    conn = sqlite3.connect(path)  # the app under test opens its own connection
    try:
        return conn.execute("SELECT name FROM projects WHERE owner_id = :owner", {"owner": owner_id}).fetchall()
    finally:
        conn.close()


def note_tags(path, note_id):
    engine = create_engine(f"sqlite:///{path}")  # through SQLAlchemy (sqlite3.dbapi2.connect)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT tag_id FROM note_tags WHERE note_id = :n"), {"n": note_id}).all()
    finally:
        engine.dispose()
"""

APP_TESTS = """
import sqlite3

import myapp


def test_as_the_docs_show(tenant_db):
    conn = tenant_db.connect()
    for note_id in (1, 2, 3):
        conn.execute("SELECT id, title FROM notes WHERE id = ?", (note_id,)).fetchall()
    conn.execute("UPDATE notes SET title = 'x', priority = 1 WHERE id = 1")
    conn.execute("UPDATE notes SET title = ?, priority = ? WHERE id = ?", ("it's", 3, 2))
    conn.close()


def test_plain_sqlite3_and_app_code(tenant_db, tenant_fleet):
    plain = sqlite3.connect(tenant_db.path)
    plain.execute("SELECT count(*) FROM users WHERE email LIKE 'a%' AND display_name IS NOT NULL").fetchall()
    plain.close()
    readonly = sqlite3.connect(tenant_db.path.as_uri() + "?mode=ro", uri=True)
    readonly.execute("/* app */ SELECT label FROM tags WHERE color = 'red'").fetchall()
    readonly.close()
    myapp.project_names(str(tenant_db.path), 7)
    myapp.note_tags(tenant_db.path, 3)
    fleet = tenant_fleet(count=3, versions=["head-5"], name="old")  # built, migrated, read by the harness
    fleet.migrate().raise_on_failure()
    assert tenant_db.current_version() == fleet[0].current_version()
    tenant_db.schema()
    elsewhere = sqlite3.connect(":memory:")  # not a tenant
    elsewhere.execute("SELECT 1 AS one").fetchall()
    elsewhere.close()
"""

RECORDED = [
    "SELECT count(*) FROM users WHERE email LIKE ? AND display_name IS NOT NULL",
    "SELECT id, title FROM notes WHERE id = ?",
    "SELECT label FROM tags WHERE color = ?",
    "SELECT name FROM projects WHERE owner_id = ?",
    "SELECT tag_id FROM note_tags WHERE note_id = ?",
    "UPDATE notes SET title = ?, priority = ? WHERE id = ?",
]


def _example(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(EXAMPLE / "migrations", pytester.path / "migrations")
    (pytester.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntenantdb_migrations = "migrations"\n'
    )
    (pytester.path / "myapp.py").write_text(MYAPP)
    pytester.makepyfile(test_app=APP_TESTS)
    pytester.syspathinsert()
    return pytester


def _recorded(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_every_tenant_connection_is_recorded_once_per_query(pytester: pytest.Pytester) -> None:
    project = _example(pytester)
    record = project.path / "recorded.jsonl"
    project.runpytest("-q", "-p", "no:randomly", "--tenantdb-record", str(record)).assert_outcomes(passed=2)
    entries = _recorded(record)
    # Tenant.connect(), sqlite3.connect(tenant.path), the app's own sqlite3 and SQLAlchemy
    # connections; each query once, literals as ?; nothing of the harness (seeding, the fleet's
    # migration and its version bookkeeping, schema reads), nothing of a non-tenant database
    assert [e["sql"] for e in entries] == RECORDED
    assert {e["app_version"] for e in entries} == {11}


def test_recording_under_xdist_reaches_the_file(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project = _example(pytester)
    record = project.path / "recorded.jsonl"
    result = project.runpytest_subprocess(
        "-n", "2", "-q", "-p", "no:randomly", "--tenantdb-record", str(record)
    )
    result.assert_outcomes(passed=2)
    assert [e["sql"] for e in _recorded(record)] == RECORDED  # both workers', written once


@pytest.mark.parametrize(
    ("traced", "stored"),
    [
        ("SELECT * FROM notes WHERE id = 1", "SELECT * FROM notes WHERE id = ?"),
        ("SELECT * FROM notes WHERE id = 2", "SELECT * FROM notes WHERE id = ?"),
        (
            "SELECT id FROM notes WHERE title = 'it''s' AND body IS NULL AND x IS NOT NULL ORDER BY 2 LIMIT 10 OFFSET 20",
            "SELECT id FROM notes WHERE title = ? AND body IS NULL AND x IS NOT NULL ORDER BY 2 LIMIT ? OFFSET ?",
        ),
        (
            "INSERT INTO t (a, b, c, d) VALUES (-1, NULL, x'00ff', 2.5e3)",
            "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?)",
        ),
        (
            "INSERT INTO t (a, b, c, d) VALUES (- 7, 3, X'', 0.5)",
            "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?)",
        ),
        (
            "SELECT a - 1, b-2, CAST(c AS NUMERIC(10, 2)), data ->> '$.name', x AS 'total' FROM t GROUP BY 1",
            "SELECT a - ?, b-?, CAST(c AS NUMERIC(10, 2)), data ->> '$.name', x AS 'total' FROM t GROUP BY 1",
        ),
        (
            "SELECT \"col 1\", t1.c2 FROM t1 -- 5 'x'\nWHERE z = 0x1F AND w IN (1, 2)",
            "SELECT \"col 1\", t1.c2 FROM t1 -- 5 'x'\nWHERE z = ? AND w IN (?, ?)",
        ),
        (
            "SELECT id FROM t WHERE a = :a AND b = 1",
            "SELECT id FROM t WHERE a = :a AND b = 1",
        ),  # not expanded
        ("SELECT FROM WHERE 'not sql' 1", "SELECT FROM WHERE 'not sql' 1"),  # sqlglot cannot parse it
    ],
)
def test_literals_become_parameters(traced: str, stored: str) -> None:
    literals._PLANS.clear()
    assert literals.parameterise(traced) == stored
    assert literals.parameterise(traced) == stored  # the second time from the shape's plan


def test_a_shape_plan_serves_other_values() -> None:
    literals._PLANS.clear()
    first = literals.parameterise("UPDATE t SET a = 'x', b = -1 WHERE json_extract(d, '$.a') = 3")
    second = literals.parameterise("UPDATE t SET a = 'yy', b = -20 WHERE json_extract(d, '$.b') = 4")
    assert len(literals._PLANS) == 1  # one parse for both
    assert first == "UPDATE t SET a = ?, b = ? WHERE json_extract(d, '$.a') = ?"
    assert second == "UPDATE t SET a = ?, b = ? WHERE json_extract(d, '$.b') = ?"


def test_a_statement_that_cannot_be_parameterised_is_kept_as_it_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    appcode = importlib.import_module("pytest_tenantdb.checks.appcode")

    def broken(sql: str) -> str:
        raise RuntimeError("a bug in the parser")

    monkeypatch.setattr(appcode, "parameterise", broken)
    recorder = appcode.Recorder()
    conn = sqlite3.connect(":memory:")
    recorder.watch(conn)
    conn.execute("CREATE TABLE t (a)")  # DDL: not app queries
    for _ in range(2):
        conn.execute("-- a comment first\nSELECT a FROM t WHERE a = ?", (1,)).fetchall()
    conn.close()
    assert list(recorder.statements) == ["SELECT a FROM t WHERE a = 1"]  # once, as it ran


def test_recorded_parameters_reach_the_checker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pytest_tenantdb.cli import main

    root = tmp_path / "project"
    shutil.copytree(EXAMPLE / "migrations", root / "migrations")
    shutil.copy(
        BROKEN / "rename_breaks_old_queries" / "migrations" / "0012_rename_note_title.sql",
        root / "migrations",
    )
    old = '{"app_version": 11, "sql": "SELECT id FROM notes WHERE title = \'a\'"}\n'  # written before ?s
    new = '{"app_version": 11, "sql": "SELECT id, body FROM notes WHERE title = ? AND id > ?"}\n'
    (root / "recorded.jsonl").write_text(old + new)
    (root / "pyproject.toml").write_text(
        '[tool.tenantdb]\nmigrations = "migrations"\nrecorded = "recorded.jsonl"\n'
    )
    assert main(["check", str(root), "--format", "json"]) == 1
    found = [f for f in json.loads(capsys.readouterr().out) if Path(f["file"]).name == "recorded.jsonl"]
    assert sorted((f["code"], f["line"]) for f in found) == [("TDB201", 1), ("TDB201", 2)]


def test_old_code_failure_is_short_and_names_the_query(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the first failing query only, and every parameter of every query of the app
    version in one dict (``parameters: {'?1': ..., '?7': ...}``). After: each failing query
    (the first three in full: SQL on one line, SQLite's error at the new schema version, its own
    first three parameters) and the rest by name."""
    from pytest_tenantdb.checks.appcode import REGISTRY

    for version in list(REGISTRY):  # app code another in-process run registered is not this project's
        monkeypatch.delitem(REGISTRY, version)
    for name in ("migrations", "queries"):
        shutil.copytree(EXAMPLE / name, pytester.path / name)
    for name in ("schema.sql", "tenantdb.lock", "pyproject.toml"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    apply_variant(pytester.path, "rename_breaks_old_queries")  # 0012 renames notes.title in place
    where = " AND ".join(f"c{n} = ?" for n in range(1, 7))
    recorded = pytester.path / "recorded.jsonl"
    recorded.write_text(
        "".join(
            json.dumps(
                {
                    "app_version": 11,
                    "sql": f"SELECT id FROM (SELECT id, title, {k} AS {cols}"
                    f" FROM notes) WHERE title = ? AND {where}",
                }
            )
            + "\n"
            for k, cols in enumerate(["c1, 0 AS c2, 0 AS c3, 0 AS c4, 0 AS c5, 0 AS c6"] * 6)
        )
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "-q", "--tenantdb-examples", "5", "-k", "old_code and app_0011",
        "-o", "tenantdb_queries=", "-o", f"tenantdb_recorded={recorded}",
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    message = out[out.index("old code still runs") : out.index("minimal failing tenant")].strip().splitlines()
    assert message[0] == (
        "old code still runs: app version 11 breaks on a tenant migrated from schema version 11 to 12: "
        "6 of its 6 queries and functions work at 11 but fail at 12"
    )
    first = (
        "SELECT id FROM (SELECT id, title, 0 AS c1, 0 AS c2, 0 AS c3, 0 AS c4, 0 AS c5, 0 AS c6 FROM notes) "
        "WHERE title = ? AND c1 = ? AND c2 = ? AND c3 = ? AND c4 = ? AND c5 = ? AND c6 = ?"
    )
    assert message[1:4] == [
        "  recorded statement 1",
        f"    {first[:157]}...",  # one line, cut at 160 characters
        "    error at 12: OperationalError: no such column: title",
    ]
    assert message[4].startswith("    parameters: ?1=") and message[4].endswith(", (+4 more)")
    assert message[-1] == "  and 3 more: recorded statement 4, recorded statement 5, recorded statement 6"
    assert len(message) == 1 + 3 * 4 + 1  # three queries in full, the others named
    assert "'?7'" not in "\n".join(message)  # not every parameter of every query
    tenant = out[out.index("minimal failing tenant") :]
    assert "params={...}" in tenant and "'?7'" not in tenant  # hypothesis' example: no wall either
