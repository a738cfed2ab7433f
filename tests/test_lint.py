"""The backward-compatibility checker: each rule on a small project, safe look-alikes not flagged."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main
from pytest_tenantdb.lint.engine import explain, lint_step
from pytest_tenantdb.lint.rules import RULES
from pytest_tenantdb.migrations import SqlStep
from pytest_tenantdb.migrations.statements import Statement
from pytest_tenantdb.schema import Schema
from tests.conftest import EXAMPLE, apply_variant

BASE = (
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, plan TEXT DEFAULT 'free', "
    "age INTEGER, status TEXT CHECK (status IN ('a', 'b')));\n"
    "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT);\n"
    "CREATE INDEX posts_user ON posts(user_id);\n"
    "CREATE VIEW active AS SELECT * FROM users;\n"
)
QUERIES = "-- name: q\nSELECT id, email, name, plan, age FROM users;\n-- name: p\nSELECT title FROM posts JOIN users ON users.id = posts.user_id;\n-- name: v\nSELECT * FROM active;\n"


def _codes(project: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = main(["check", str(project), "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    assert code == (1 if findings else 0)
    return sorted(f["code"] for f in findings)


@pytest.fixture
def project(tmp_path: Path) -> Callable[[str], Path]:
    """A project whose step 2 is ``step2`` on top of BASE, with queries for app version 1."""

    def make(step2: str) -> Path:
        root = tmp_path / "project"
        shutil.rmtree(root, ignore_errors=True)
        (root / "migrations").mkdir(parents=True)
        (root / "queries").mkdir()
        (root / "migrations" / "0001_base.sql").write_text(BASE)
        (root / "migrations" / "0002_change.sql").write_text(step2)
        (root / "queries" / "0001.sql").write_text(QUERIES)
        (root / "pyproject.toml").write_text('[tool.tenantdb]\nqueries = "queries"\n')
        return root

    return make


@pytest.mark.parametrize(
    ("step2", "expected"),
    [
        ("DROP VIEW active;\nDROP TABLE posts;", ["TDB101", "TDB111", "TDB201", "TDB201"]),
        ("ALTER TABLE users DROP COLUMN age;", ["TDB102", "TDB201", "TDB204"]),
        ("ALTER TABLE posts RENAME TO articles;", ["TDB103", "TDB201"]),
        ("ALTER TABLE posts RENAME TO articles;\nCREATE VIEW posts AS SELECT * FROM articles;", []),
        ("ALTER TABLE users RENAME COLUMN name TO full_name;", ["TDB104", "TDB201", "TDB204"]),
        ("ALTER TABLE users ADD COLUMN tier TEXT NOT NULL DEFAULT 'x';", ["TDB204"]),
        ("ALTER TABLE posts ADD COLUMN body TEXT NOT NULL DEFAULT '';", []),
        ("CREATE UNIQUE INDEX users_email ON users(email);", ["TDB108"]),
        (
            "DELETE FROM users WHERE id IN (SELECT MIN(id) FROM users GROUP BY email);\nCREATE UNIQUE INDEX users_email ON users(email);",
            [],
        ),
        ("DELETE FROM posts;", ["TDB112"]),
        ("-- tenantdb: ignore[TDB112] the posts table is a cache\nDELETE FROM posts;", []),
        ("VACUUM;", ["TDB002", "TDB113"]),
        ("-- tenantdb: no-transaction\nVACUUM;", []),
        ("ALTER TABLE posts ADD COLUMN name TEXT;", []),
    ],
)
def test_rules(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str], step2: str, expected: list[str]
) -> None:
    assert _codes(project(step2), capsys) == sorted(expected)


REBUILD = """
DROP VIEW active;
CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL, plan TEXT, age TEXT,
    status TEXT CHECK (status IN ('a', 'b', 'c')), CHECK (length(email) < 300));
INSERT INTO users_new SELECT id, email, name, plan, age, status FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
CREATE VIEW active AS SELECT * FROM users;
"""


def test_a_rebuild_is_a_change_not_a_drop(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    codes = _codes(project(REBUILD), capsys)
    # name becomes NOT NULL, age changes type, plan loses its default, a new CHECK on email;
    # the wider status CHECK is safe; the view active over users still works (no TDB101/111)
    assert codes == ["TDB106", "TDB107", "TDB109", "TDB110"]


def test_a_rebuild_that_loses_an_index_and_a_check(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    step = """
CREATE TABLE posts_new (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT);
INSERT INTO posts_new SELECT id, user_id, title FROM posts;
DROP TABLE posts;
ALTER TABLE posts_new RENAME TO posts;
"""
    assert _codes(project(step), capsys) == ["TDB114", "TDB114"]  # index posts_user, FOREIGN KEY user_id


def test_good_example_is_clean_and_variants_are_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("snapshots", ".pytest_cache"))
    assert _codes(root, capsys) == []
    for variant, expected in (
        ("upgrade_fails_on_nulls", ["TDB106"]),
        ("rebuild_drops_index", ["TDB114"]),
        ("rename_breaks_old_queries", ["TDB104", "TDB201", "TDB201"]),
    ):
        copy = tmp_path / variant
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".pytest_cache"))
        apply_variant(copy, variant)
        assert _codes(copy, capsys) == expected, variant


def test_text_and_github_formats(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = project("ALTER TABLE users DROP COLUMN plan;")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "0002_change.sql:1: TDB102 [error] column users.plan is dropped" in out
    assert "queries/0001.sql:2: TDB201 [error] no such column: plan" in out
    assert "broken by step 0002_change" in out and "safe alternative:" in out
    assert main(["check", str(root), "--format", "github"]) == 1
    assert "::error file=" in capsys.readouterr().out
    assert main(["check", str(root), "--ignore", "TDB102", "--ignore", "TDB201", "--ignore", "TDB204"]) == 0
    assert main(["check", str(root), "--since", "2"]) == 0


def test_config_errors_exit_2(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = project("SELECT 1;")
    (root / "pyproject.toml").write_text('[tool.tenantdb]\ncolour = "blue"\n')
    assert main(["check", str(root)]) == 2
    assert "[tool.tenantdb] has unknown key 'colour'" in capsys.readouterr().err
    (root / "pyproject.toml").write_text('[tool.tenantdb]\nignore = ["TDB999"]\n')
    assert main(["check", str(root)]) == 2
    assert "unknown rule code" in capsys.readouterr().err
    (root / "pyproject.toml").write_text('[tool.tenantdb]\nignore = "TDB101"\n')
    assert main(["check", str(root)]) == 2
    (root / "pyproject.toml").write_text("[tool.tenantdb\n")
    assert main(["check", str(root)]) == 2
    assert main(["check", str(root / "nowhere")]) == 2


def test_explain_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    for code in RULES:
        assert main(["explain", code.lower()]) == 0
        out = capsys.readouterr().out
        assert out.startswith(code) and "Safe alternative:" in out
        assert (Path(__file__).parent.parent / "docs" / "rules" / f"{code}.md").is_file(), (
            f"docs page for {code}"
        )
    assert main(["explain", "TDB999"]) == 2
    with pytest.raises(KeyError):
        explain("nope")


def test_an_unparsable_statement_is_a_finding_not_a_pass() -> None:
    conn = sqlite3.connect(":memory:")
    schema = Schema.from_connection(conn)
    step = SqlStep(1, "odd", Path("m/0001_odd.sql"), (Statement("SELECT ((( FROM", 3),))
    findings = lint_step(step, schema, schema)
    assert [(f.code, f.line) for f in findings] == [("TDB001", 3)]


def test_rule_pages_match_the_rule_table() -> None:
    from pytest_tenantdb.lint.rules import rule_page

    docs = Path(__file__).parent.parent / "docs" / "rules"
    for rule in RULES.values():
        assert (docs / f"{rule.code}.md").read_text() == rule_page(rule), (
            f"regenerate docs/rules/{rule.code}.md"
        )


def test_sarif_junit_and_baseline(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    from xml.etree import ElementTree as ET

    root = project("ALTER TABLE users DROP COLUMN plan;")
    assert main(["check", str(root), "--format", "sarif"]) == 1
    sarif = json.loads(capsys.readouterr().out)
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0" and {r["id"] for r in run["tool"]["driver"]["rules"]} == {
        "TDB102",
        "TDB201",
        "TDB204",
    }
    assert run["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1
    assert main(["check", str(root), "--format", "junit"]) == 1
    suite = ET.fromstring(capsys.readouterr().out)
    assert suite.get("failures") == "3" and len(suite.findall("testcase/failure")) == 3
    baseline = root / "tenantdb-baseline.json"
    assert main(["check", str(root), "--write-baseline", str(baseline)]) == 0
    capsys.readouterr()
    assert main(["check", str(root), "--baseline", str(baseline)]) == 0
    assert "0 findings" in capsys.readouterr().out
    (root / "migrations" / "0003_more.sql").write_text("DELETE FROM posts;")
    (root / "pyproject.toml").write_text(
        '[tool.tenantdb]\nqueries = "queries"\nbaseline = "tenantdb-baseline.json"\n'
    )
    assert main(["check", str(root), "--format", "json"]) == 1
    assert [f["code"] for f in json.loads(capsys.readouterr().out)] == ["TDB112"]  # only the new one
    baseline.write_text("{}")
    assert main(["check", str(root)]) == 2
    assert "not a baseline file" in capsys.readouterr().err
    assert main(["check", str(project("SELECT 1;")), "--format", "junit"]) == 0
    assert "no findings" in capsys.readouterr().out


def test_base_ref_gates_only_new_steps_with_the_base_queries(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    root = project("ALTER TABLE users DROP COLUMN plan;")  # released long ago, already flagged
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (root / "migrations" / "0003_rename.sql").write_text("ALTER TABLE posts RENAME COLUMN title TO heading;")
    (root / "queries" / "0003.sql").write_text("-- name: p\nSELECT heading FROM posts;\n")  # new code only
    assert main(["check", str(root), "--base", "HEAD", "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert sorted(f["code"] for f in found) == ["TDB104", "TDB201"]  # not the old TDB102
    assert {f["step"] for f in found} == {"0003_rename"}
    assert main(["check", str(root), "--base", "no-such-ref"]) == 2
    assert "git rev-parse" in capsys.readouterr().err


APP_PY = """
import sqlite3


def titles(conn: sqlite3.Connection) -> list[str]:
    return conn.execute(
        "SELECT title FROM posts "
        "WHERE user_id = ?", (1,)
    ).fetchall()


def dynamic(conn, column):
    return conn.execute(f"SELECT {column} FROM posts")  # built at run time: not checked


LABEL = "select the best one"  # prose, not SQL
"""


def test_python_sql_literals_of_the_base_are_old_code(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    from pytest_tenantdb.queries import python_queries

    found = python_queries(Path("app/db.py"), APP_PY)
    assert [(q.name, q.sql) for q in found] == [("db.py:7", "SELECT title FROM posts WHERE user_id = ?")]
    root = project("SELECT 1;")
    (root / "app").mkdir()
    (root / "app" / "db.py").write_text(APP_PY)
    (root / "pyproject.toml").write_text('[tool.tenantdb]\npython = ["app"]\n')
    git = ["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (root / "migrations" / "0003_rename.sql").write_text("ALTER TABLE posts RENAME COLUMN title TO heading;")
    (root / "app" / "db.py").write_text(APP_PY.replace("title", "heading"))  # the new code is fine
    assert main(["check", str(root), "--base", "HEAD", "--format", "json"]) == 1
    found_codes = {(f["code"], Path(f["file"]).name, f["line"]) for f in json.loads(capsys.readouterr().out)}
    assert found_codes == {("TDB104", "0003_rename.sql", 1), ("TDB201", "db.py", 7)}
    (root / "app" / "broken.py").write_text("def (:\n")
    assert main(["check", str(root)]) == 2
    assert "cannot parse Python source" in capsys.readouterr().err


def test_recorded_queries_are_old_code(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project("ALTER TABLE posts DROP COLUMN title;")
    (root / "rec.jsonl").write_text('{"app_version": 1, "sql": "SELECT title FROM posts WHERE id = 3"}\n')
    (root / "pyproject.toml").write_text('[tool.tenantdb]\nrecorded = "rec.jsonl"\n')
    assert main(["check", str(root), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert sorted((f["code"], Path(f["file"]).name) for f in found) == [
        ("TDB102", "0002_change.sql"),
        ("TDB201", "rec.jsonl"),
    ]
    (root / "pyproject.toml").write_text('[tool.tenantdb]\npython = ["nowhere"]\n')
    assert main(["check", str(root)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_rules_table_in_the_docs_is_current(tmp_path: Path) -> None:
    from pytest_tenantdb.lint.rules import write_rule_docs

    docs = Path(__file__).parent.parent / "docs" / "rules"
    shutil.copy(docs / "index.md", tmp_path / "index.md")
    write_rule_docs(tmp_path)
    assert (tmp_path / "index.md").read_text() == (docs / "index.md").read_text(), "run make rule-docs"


def test_severity_overrides(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = project("ALTER TABLE users DROP COLUMN plan;\nDELETE FROM posts;")
    (root / "pyproject.toml").write_text(
        '[tool.tenantdb]\nqueries = "queries"\n[tool.tenantdb.severity]\nTDB112 = "error"\nTDB204 = "off"\n'
    )
    assert main(["check", str(root), "--format", "json"]) == 1
    found = {f["code"]: f["severity"] for f in json.loads(capsys.readouterr().out)}
    assert found == {"TDB102": "error", "TDB201": "error", "TDB112": "error"}
    (root / "pyproject.toml").write_text('[tool.tenantdb.severity]\nTDB112 = "fatal"\n')
    assert main(["check", str(root)]) == 2
    assert 'has TDB112 = "fatal"; expected a table: rule codes mapped to' in capsys.readouterr().err


def test_findings_cache_is_reused_and_invalidated(
    project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    root = project("CREATE INDEX posts_title ON posts(title);")
    assert _codes(root, capsys) == []
    cached = list((root / ".pytest_cache" / "d" / "tenantdb" / "findings").glob("*.json"))
    assert len(cached) == 2  # one per step
    assert _codes(root, capsys) == []
    (root / "migrations" / "0002_change.sql").write_text("ALTER TABLE users DROP COLUMN age;")
    assert _codes(root, capsys) == ["TDB102", "TDB201", "TDB204"]  # the edited step is analysed again
    (root / "queries" / "0001.sql").write_text("-- name: q\nSELECT id FROM users;\n")
    assert _codes(root, capsys) == []  # new old code: the contract step is now safe


def test_query_window(project: Callable[[str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    root = project("CREATE INDEX posts_title ON posts(title);")
    (root / "queries" / "0001.sql").write_text("-- name: old\nSELECT age FROM users;\n")
    (root / "queries" / "0002.sql").write_text(
        "-- name: new\nSELECT email FROM users;\n"
    )  # app 2 stopped using age
    (root / "migrations" / "0003_contract.sql").write_text("ALTER TABLE users DROP COLUMN age;")
    assert _codes(root, capsys) == []  # app 2, the version in service, does not use age
    (root / "pyproject.toml").write_text('[tool.tenantdb]\nqueries = "queries"\nwindow = 2\n')
    assert main(["check", str(root), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert [(f["code"], Path(f["file"]).name, f["step"]) for f in found] == [
        ("TDB201", "0001.sql", "0003_contract")
    ]
    assert "app version 1" in found[0]["message"]
    (root / "pyproject.toml").write_text('[tool.tenantdb]\nqueries = "queries"\nwindow = 0\n')
    assert _codes(root, capsys) == []  # no earlier version live: no old code to break
    (root / "pyproject.toml").write_text("[tool.tenantdb]\nwindow = -1\n")
    assert main(["check", str(root)]) == 2


PG_BASE = (
    "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, age int);\n"
    "CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint REFERENCES users(id), title text);\n"
)


def test_postgres_old_queries_window_and_unreadable_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Postgres old code is resolved by sqlglot: the window reaches back, and a query sqlglot
    cannot read is reported where it is (TDB001) while the others are still checked."""
    root = tmp_path / "pg"
    (root / "migrations").mkdir(parents=True)
    (root / "queries").mkdir()
    (root / "migrations" / "0001_base.sql").write_text(PG_BASE)
    (root / "migrations" / "0002_expand.sql").write_text("ALTER TABLE users ADD COLUMN born date;")
    (root / "migrations" / "0003_contract.sql").write_text("ALTER TABLE users DROP COLUMN age;")
    (root / "queries" / "0001.sql").write_text(
        "-- name: old\nSELECT age FROM users WHERE id = $1;\n-- name: odd\nSELECT FROM WHERE (;\n"
    )
    (root / "queries" / "0002.sql").write_text("-- name: new\nSELECT born FROM users WHERE id = $1;\n")
    (root / "pyproject.toml").write_text(
        '[tool.tenantdb]\ndialect = "postgres"\nqueries = "queries"\nwindow = 2\n'
    )
    assert main(["check", str(root), "--format", "json"]) == 1
    found = [
        (f["code"], Path(f["file"]).name, f["line"], f["step"]) for f in json.loads(capsys.readouterr().out)
    ]
    assert ("TDB001", "0001.sql", 4, "0002_expand") in found  # said once per step it was checked for
    assert ("TDB201", "0001.sql", 2, "0003_contract") in found  # app 1 still in the fleet (window 2)
    assert {code for code, *_ in found} == {"TDB001", "TDB201"}  # the drop is the contract of app 2
    (root / "pyproject.toml").write_text('[tool.tenantdb]\ndialect = "postgres"\nqueries = "queries"\n')
    assert main(["check", str(root), "--format", "json"]) == 1
    found = [(f["code"], f["step"]) for f in json.loads(capsys.readouterr().out)]
    assert ("TDB201", "0003_contract") not in found  # window 1: only app 2 runs on version 3


def test_a_rule_that_cannot_read_a_step_is_a_note_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    def confused(ctx: object) -> list[object]:
        raise AttributeError("'NoneType' object has no attribute 'name'")

    monkeypatch.setitem(RULES, "TDB101", replace(RULES["TDB101"], check=confused))
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    before = Schema.from_connection(conn)
    step = SqlStep(2, "wipe", Path("m/0002_wipe.sql"), (Statement("DELETE FROM t", 1),))
    findings = lint_step(step, before, before)
    assert [(f.code, f.severity) for f in findings] == [("TDB001", "note"), ("TDB112", "warning")]
    assert "rule TDB101 could not read this step" in findings[0].message


def test_postgres_mode_parses_each_statement_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlglot

    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.lint.engine import LintOptions, lint_project
    from pytest_tenantdb.migrations import MigrationSet
    from pytest_tenantdb.sqltext import parse_statement
    from pytest_tenantdb.versioning import UserVersionStore

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_a.sql").write_text(
        "CREATE TABLE a (id INT PRIMARY KEY, n INT);\nCREATE INDEX ix ON a (n);\n"
    )
    (tmp_path / "m" / "0002_b.sql").write_text(
        "ALTER TABLE a ADD COLUMN c INT DEFAULT 0;\nALTER TABLE a DROP COLUMN n;\n"
    )
    parsed: list[str] = []
    real = sqlglot.parse_one
    monkeypatch.setattr(sqlglot, "parse_one", lambda sql, **kw: parsed.append(sql) or real(sql, **kw))
    parse_statement.cache_clear()
    migrations = MigrationSet.from_path(tmp_path / "m")
    found = lint_project(
        migrations,
        TemplateCache(tmp_path / "c", migrations, UserVersionStore()),
        None,
        LintOptions(dialect="postgres"),
    )
    assert sorted(parsed) == sorted(s.sql for step in migrations for s in step.up)  # type: ignore[attr-defined]
    assert [f.code for f in found] == ["TDB102"]


def test_findings_cache_entries_written_at_once_do_not_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pytest -n 4`` from cold: workers store the same entry at the same moment. Here a second
    store runs in the middle of the first (just before its rename)."""
    import os

    from pytest_tenantdb.lint import engine
    from pytest_tenantdb.lint.findings import Finding

    entry = tmp_path / "cache" / "key.json"
    mine = [Finding("TDB101", "error", "first", "step.sql", 1)]
    theirs = [Finding("TDB101", "error", "second", "step.sql", 2)]
    real_replace = os.replace
    nested: list[bool] = []

    def replace(src: object, dst: object) -> None:
        if not nested:
            nested.append(True)
            engine._store(entry, theirs)  # another worker, same entry
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)
    engine._store(entry, mine)
    assert engine._load(entry) == mine and not list(entry.parent.glob("*.partial"))


def test_the_gate_on_a_project_in_a_subfolder_names_repository_paths(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project below the repository's top: the base is read from the whole tree (git ls-tree
    lists only the current folder otherwise, and the gate passed with 0 findings), and every
    path is relative to the repository, the base's old queries where they live, not in /tmp."""
    import subprocess

    app = tmp_path / "repo" / "app"
    (app / "migrations").mkdir(parents=True)
    (app / "queries").mkdir()
    (app / "migrations" / "0001_base.sql").write_text(BASE)
    (app / "queries" / "0001.sql").write_text(QUERIES)
    (app / "pyproject.toml").write_text('[tool.tenantdb]\nqueries = "queries"\n')
    git = ["git", "-C", str(tmp_path / "repo"), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    (app / "migrations" / "0002_drop.sql").write_text("ALTER TABLE users DROP COLUMN plan;")
    for cwd in (app, tmp_path):
        monkeypatch.chdir(cwd)
        assert main(["check", str(app), "--base", "HEAD", "--format", "sarif"]) == 1
        run = json.loads(capsys.readouterr().out)["runs"][0]
        results = run["results"]
        where = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
        assert where == {"app/migrations/0002_drop.sql", "app/queries/0001.sql"}
        rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
        assert all(rules[r["ruleIndex"]] == r["ruleId"] for r in results)
        assert run["tool"]["driver"]["version"]
        assert len({r["partialFingerprints"]["tenantdb/v1"] for r in results}) == len(results)
    (app / "migrations" / "0002_drop.sql").write_text("\n\nALTER TABLE users DROP COLUMN plan;")
    assert main(["check", str(app), "--base", "HEAD", "--format", "sarif"]) == 1
    moved = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    # the finding moved two lines down and kept its identity
    assert {r["partialFingerprints"]["tenantdb/v1"] for r in moved} == {
        r["partialFingerprints"]["tenantdb/v1"] for r in results
    }
