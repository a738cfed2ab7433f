"""Migration coverage: the lines and branches of Python steps no drawn tenant reached."""

from __future__ import annotations

import pytest

from pytest_tenantdb.checks.step_coverage import parse_setting
from pytest_tenantdb.errors import ConfigError

BACKFILL = """\
def up(conn):
    conn.execute("ALTER TABLE t ADD COLUMN b TEXT")
    if conn.execute("SELECT COUNT(*) FROM t WHERE a = 'no tenant has this'").fetchone()[0]:
        conn.execute("UPDATE t SET b = 'found' WHERE a = 'no tenant has this'")
    for (n,) in conn.execute("SELECT id FROM t").fetchall():
        conn.execute("UPDATE t SET b = ? WHERE id = ?", (str(n), n))
"""


@pytest.mark.parametrize("setting", ["on", "100"])
def test_the_summary_lists_what_no_tenant_reached_and_a_minimum_fails_the_run(
    setting: str, pytester: pytest.Pytester
) -> None:
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\n")
    (migrations / "0002_backfill.py").write_text(BACKFILL)
    pytester.makeini(
        f"[pytest]\ntenantdb_checks = true\ntenantdb_examples = 10\ntenantdb_step_coverage = {setting}\n"
    )
    result = pytester.runpytest("-k", "upgrade or data_kept")
    result.stdout.fnmatch_lines(
        [
            "*tenantdb step coverage: what no drawn tenant reached*",
            "*migrations/0002_backfill.py: line 4, branch 3->4",
        ]
    )  # the UPDATE of the rows no tenant had, and the branch into it; not the `def` line
    assert result.parseoutcomes()["passed"] == 4
    if setting == "on":
        assert result.ret == 0
    else:
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*FAIL: step coverage * % is under tenantdb_step_coverage = 100 %*"])


@pytest.mark.parametrize(("raw", "expected"), [("off", None), ("on", 0.0), ("80", 80.0), ("75%", 75.0)])
def test_the_setting(raw: str, expected: float | None) -> None:
    assert parse_setting(raw) == expected


def test_a_bad_setting_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="off, on, or a minimum percentage"):
        parse_setting("lots")
