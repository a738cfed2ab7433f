"""One configuration for the plugin and the CLI: ``[tool.tenantdb]`` read by both, pytest ini keys
as overrides of the same keys, the lock honoured by ``tenantdb check``, and ``tenantdb check`` and
the ``compatible`` items finding the same things from the same inputs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main

pytest_plugins = ["pytester"]

BASE = (
    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT, age INTEGER);\n"
    "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users(id), title TEXT);\n"
)
DROP_AGE = "ALTER TABLE users DROP COLUMN age;\n"


def _project(root: Path, table: str = "", *, steps: dict[str, str] | None = None) -> Path:
    (root / "migrations").mkdir(parents=True, exist_ok=True)
    (root / "queries").mkdir(exist_ok=True)
    for name, sql in (steps or {"0001_base": BASE, "0002_drop_age": DROP_AGE}).items():
        (root / "migrations" / f"{name}.sql").write_text(sql)
    (root / "queries" / "0001.sql").write_text("-- name: ages\nSELECT id, age FROM users;\n")
    (root / "pyproject.toml").write_text(f'[tool.tenantdb]\nqueries = "queries"\n{table}')
    return root


def _check(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> list[tuple[str, str]]:
    code = main(["check", str(root), "--format", "json", *args])
    findings = json.loads(capsys.readouterr().out)
    assert code == (1 if any(f["severity"] != "note" for f in findings) else 0)
    return sorted((f["code"], f["step"]) for f in findings)


def test_tenantdb_lock_writes_the_lock_and_check_honours_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _project(tmp_path / "p")
    before = _check(root, capsys)
    assert ("TDB201", "0002_drop_age") in before  # app 1 still reads age
    assert main(["lock", str(root)]) == 0
    assert "2 released step(s)" in capsys.readouterr().out
    assert (root / "tenantdb.lock").read_text().count("\n") == 4  # header (2 lines) + 2 steps
    assert _check(root, capsys) == []  # released: tenants ran it, flagging it again helps no one
    (root / "migrations" / "0002_drop_age.sql").write_text(
        DROP_AGE + "ALTER TABLE users ADD COLUMN x TEXT;\n"
    )
    assert ("TDB201", "0002_drop_age") in _check(root, capsys)  # edited: checked again


def test_lock_from_the_base_ref_keeps_the_released_text(
    pytester: pytest.Pytester,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = tmp_path / "repo"
    root = _project(repo / "service", 'lock = "tenantdb.lock"\n')
    for args in (
        ["init", "-q"],
        ["add", "."],
        ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "r1"],
    ):
        subprocess.run(["git", "-C", str(repo), *args], check=True)
    (root / "migrations" / "0002_drop_age.sql").write_text("ALTER TABLE users DROP COLUMN name;\n")
    assert main(["lock", str(root), "--base", "HEAD"]) == 0
    assert "as at HEAD" in capsys.readouterr().out
    # the lock has the released text's checksum: the edit since is caught by history
    (root / "pyproject.toml").write_text('[tool.tenantdb]\nqueries = "queries"\nchecks = true\n')
    monkeypatch.chdir(root)
    result = pytester.runpytest_subprocess("-q", "-k", "history", str(root))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*released step 0002_drop_age was edited*"])
    assert main(["lock", str(root), "--base", "no-such-ref"]) == 2
    assert "no-such-ref" in capsys.readouterr().err


def test_check_and_the_compatible_items_find_the_same(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """Queries folder, Python literals, recorded queries and a baseline: both read them all."""
    root = _project(
        pytester.path,
        'python = ["app"]\nrecorded = "recorded.jsonl"\nbaseline = "baseline.json"\nchecks = true\n',
        steps={
            "0001_base": BASE,
            "0002_drop_age": DROP_AGE,
            "0003_rename_title": "ALTER TABLE posts RENAME COLUMN title TO headline;\n",
            "0004_drop_email": "ALTER TABLE users DROP COLUMN email;\n",
        },
    )
    (root / "app").mkdir()
    (root / "app" / "posts.py").write_text(
        'def titles(conn):\n    return conn.execute("SELECT title FROM posts")\n'
    )
    (root / "recorded.jsonl").write_text(
        json.dumps({"app_version": 3, "sql": "SELECT email FROM users"}) + "\n"
    )
    (root / "baseline.json").write_text(json.dumps({"tenantdb-baseline": 1, "findings": []}))
    found = _check(root, capsys)
    steps = {step for _, step in found}
    assert {"0002_drop_age", "0003_rename_title", "0004_drop_email"} <= steps
    result = pytester.runpytest("-q", "-p", "no:randomly", "-k", "compatible")
    failed = set(re.findall(r"^FAILED [^\s:]+::(\S+)::compatible", result.stdout.str(), re.MULTILINE))
    assert failed == steps
    for code, _ in found:  # each finding in the items' messages
        assert code in result.stdout.str()
    # a baseline written by the CLI silences the same findings in both
    assert main(["check", str(root), "--write-baseline", str(root / "baseline.json")]) == 0
    capsys.readouterr()
    assert _check(root, capsys) == []
    pytester.runpytest("-q", "-p", "no:randomly", "-k", "compatible").assert_outcomes(passed=4)


def test_pytest_reads_tool_tenantdb_and_ini_keys_override_it(pytester: pytest.Pytester) -> None:
    _project(pytester.path, "checks = true\nwindow = 2\n")
    ids = pytester.runpytest("--co", "-q").stdout.str()
    assert "every_path::from_0001" in ids  # window 2 from [tool.tenantdb]: head-2 (0) and head-1 (1)
    ids = pytester.runpytest("--co", "-q", "-o", "tenantdb_window=1").stdout.str()
    assert "every_path::from_0001" in ids and "every_path::from_0000" not in ids
    assert "migrations/" not in pytester.runpytest("--co", "-q", "-o", "tenantdb_checks=false").stdout.str()
    (pytester.path / "pyproject.toml").write_text('[tool.tenantdb]\nchecks = "yes"\n')
    result = pytester.runpytest("--co", "-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert '[tool.tenantdb] checks = "yes" is a string; expected true or false' in result.stderr.str()
    (pytester.path / "pyproject.toml").write_text("[tool.tenantdb]\ncheck = true\n")
    result = pytester.runpytest("--co", "-q")
    result.stderr.fnmatch_lines(["*unknown key 'check' (did you mean 'checks'?)*"])


def test_the_checker_uses_pytests_cache_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path / "p")
    with (root / "pyproject.toml").open("a") as out:
        out.write('\n[tool.pytest.ini_options]\ncache_dir = "build/pytest-cache"\n')
    _check(root, capsys)
    assert (root / "build" / "pytest-cache" / "d" / "tenantdb" / "templates").is_dir()
    assert not (root / ".pytest_cache").exists()
