"""Checks at real-history scale: one run of drawn tenants per step, rows only where a step can
reach, so the cost of a step's checks does not grow with the tables it does not touch."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from pytest_tenantdb.checks.context import CheckContext
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.strategies import TenantData, tenant_data
from pytest_tenantdb.versioning import UserVersionStore
from tests.conftest import schema_from_sql

FAMILY = """
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id), a TEXT);
CREATE TABLE other (id INTEGER PRIMARY KEY, b TEXT);
"""


def _project(pytester: pytest.Pytester) -> Path:
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\n")
    (migrations / "0002_b.up.sql").write_text("ALTER TABLE t ADD COLUMN b TEXT;\n")
    (migrations / "0002_b.down.sql").write_text("ALTER TABLE t DROP COLUMN b;\n")
    pytester.makeini("[pytest]\ntenantdb_checks = true\ntenantdb_examples = 5\n")
    return migrations


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of each hypothesis run the inner pytest starts for step 2."""
    items = importlib.import_module("pytest_tenantdb.checks.items")  # the module the inner run uses
    runs: list[str] = []
    real = items.run_check

    def counting(ctx: Any, check: Any, *args: Any, **kwargs: Any) -> None:
        if check.aim == 2:
            runs.append(check.kind)
        real(ctx, check, *args, **kwargs)

    monkeypatch.setattr(items, "run_check", counting)
    return runs


def test_the_checks_of_a_step_share_one_run_of_drawn_tenants(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester)
    runs = _count_runs(monkeypatch)
    result = pytester.runpytest(
        "-k", "0002_b and (upgrade or data_kept or round_trip)", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=3)  # upgrade, data_kept, round_trip
    assert runs == ["upgrade+data_kept+round_trip"]


def test_a_selection_runs_only_the_checks_it_selects(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(pytester)
    runs = _count_runs(monkeypatch)
    result = pytester.runpytest("-k", "0002_b and data_kept", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert runs == ["data_kept"]


def test_each_check_of_a_shared_run_keeps_its_own_failure_and_saved_tenant(pytester: pytest.Pytester) -> None:
    migrations = _project(pytester)
    # up loses the rows of t (written by nobody), down cannot restore them
    (migrations / "0002_b.up.sql").write_text(
        "CREATE TABLE t_new (id INTEGER PRIMARY KEY, a TEXT, b TEXT);\nDROP TABLE t;\n"
        "ALTER TABLE t_new RENAME TO t;\n"
    )
    pytester.makeini(
        "[pytest]\ntenantdb_checks = true\ntenantdb_examples = 30\ntenantdb_failures = failures\n"
    )
    result = pytester.runpytest(
        "-k", "0002_b and (upgrade or data_kept or round_trip)", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*0002_b::data_kept*",
            "*drops the table and creates it again without copying its rows*",
            "*0002_b::round_trip*",
            "*round trip: up -> down of 0002_b does not restore the data of table t*",
        ]
    )
    saved = sorted(p.name for p in (pytester.path / "failures").iterdir())
    assert saved == ["0002_b_data_kept.sql", "0002_b_round_trip.sql"]
    (pytester.path / "failures" / "notes.sql").write_text("-- mine\n")  # not ours: left alone
    (migrations / "0002_b.up.sql").write_text("ALTER TABLE t ADD COLUMN b TEXT;\n")  # fixed
    result = pytester.runpytest(
        "-k", "0002_b and (upgrade or data_kept or round_trip)", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=3)
    assert sorted(p.name for p in (pytester.path / "failures").iterdir()) == ["notes.sql"]  # no stale replays


def test_rows_are_drawn_only_for_the_tables_asked_and_their_parents() -> None:
    schema = schema_from_sql(FAMILY)
    seen: dict[str, int] = {"parent": 0, "child": 0, "other": 0}

    @settings(max_examples=60, database=None, suppress_health_check=list(HealthCheck))
    @given(tenant_data(schema, max_rows=5, tables={"CHILD"}))
    def draw(data: TenantData) -> None:
        assert len(data.rows.get("parent", [])) <= 2  # drawn for its keys only
        assert "other" not in data.rows
        for table, rows in data.rows.items():
            seen[table] += len(rows)

    draw()
    assert seen["child"] > 0 and seen["parent"] > 0 and seen["other"] == 0


def _context(tmp_path: Path, steps: dict[str, str]) -> CheckContext:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name, text in steps.items():
        (folder / name).write_text(text)
    migrations = MigrationSet.from_path(folder)
    return CheckContext(TemplateCache(tmp_path / "cache", migrations, UserVersionStore()))


def test_a_sql_step_is_drawn_over_the_tables_it_reaches(tmp_path: Path) -> None:
    ctx = _context(
        tmp_path,
        {
            "0001_family.sql": FAMILY,
            "0002_index.sql": "CREATE INDEX parent_name ON parent (name);\n",
            "0003_broken.sql": "ALTER TABLE missing ADD COLUMN x TEXT;\n",
        },
    )
    # the index is on parent; child's rows go with parent's (a foreign key points at it)
    assert ctx.focus(2) == {"parent", "child"}
    assert ctx.focus(3) is None  # fails on an empty tenant: every table is drawn, upgrade says why


def test_a_python_step_is_drawn_over_the_tables_its_source_names(tmp_path: Path) -> None:
    ctx = _context(
        tmp_path,
        {
            "0001_family.sql": FAMILY,
            "0002_fill.py": (
                "def up(conn):\n"
                "    if conn.execute('SELECT COUNT(*) FROM other').fetchone()[0]:\n"
                "        conn.execute(\"UPDATE other SET b = 'x'\")\n"
            ),
        },
    )
    # on an empty tenant only the COUNT runs; the UPDATE of a tenant with rows is in the source
    assert ctx.focus(2) == {"other"}


def test_scopes_keep_a_step_together_and_everything_else_apart() -> None:
    from pytest_tenantdb.checks.xdist import step_scope

    upgrade, round_trip = "m/0002_b.sql::0002_b::upgrade", "m/0002_b.sql::0002_b::round_trip"
    assert step_scope(upgrade) == step_scope(round_trip)
    assert step_scope(upgrade) != step_scope("m/0003_c.sql::0003_c::upgrade")
    assert step_scope("m/0003_c.sql::0003_c::compatible") == "m/0003_c.sql::0003_c::compatible"
    assert step_scope("tests/test_x.py::test_a") == "tests/test_x.py::test_a"
    assert step_scope("m/0003_c.sql::history") == "m/0003_c.sql::history"


def test_with_xdist_a_steps_checks_run_on_one_worker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    migrations = _project(pytester)
    for n in range(3, 7):
        (migrations / f"{n:04d}_c{n}.sql").write_text(f"ALTER TABLE t ADD COLUMN c{n} TEXT;\n")
    result = pytester.runpytest_subprocess("-n", "2", "-v", "-p", "no:cacheprovider", "-k", "not compatible")
    workers: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        found = re.search(r"\[(gw\d)\] .*PASSED \S+::(\d{4}_\w+)::(upgrade|data_kept|round_trip)", line)
        if found:
            workers.setdefault(found[2], set()).add(found[1])
    assert len(workers) == 6  # every step's checks ran ...
    assert all(len(w) == 1 for w in workers.values()), workers  # ... each step on one worker
    assert set().union(*workers.values()) == {"gw0", "gw1"}  # and both workers had work


def test_a_selection_of_other_files_does_not_collect_the_checks(pytester: pytest.Pytester) -> None:
    _project(pytester)
    pytester.makepyfile(test_app="def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    builtin = "migrations/0002_b.up.sql::0002_b::upgrade"  # a node of the step's file
    everything = pytester.runpytest("--co", "-q")
    assert builtin in everything.stdout.lines
    one = pytester.runpytest("--co", "-q", "test_app.py::test_one")
    assert not any("migrations/" in line for line in one.stdout.lines)
    one.stdout.fnmatch_lines(["test_app.py::test_one", "1 test collected*"])
    checks = pytester.runpytest("--co", "-q", "migrations")
    assert builtin in checks.stdout.lines and "test_app.py::test_one" not in checks.stdout.lines
    pasted = pytester.runpytest("-q", builtin)  # an id pasted from the output runs that one check
    pasted.assert_outcomes(passed=1)
    # a step's file: its checks; the head step's file also those of the history's end
    step = pytester.runpytest("--co", "-q", "migrations/0002_b.up.sql")
    assert {line.split("::", 1)[-1] for line in step.stdout.lines if "::" in line} == {
        "0002_b::upgrade",
        "0002_b::data_kept",
        "0002_b::round_trip",
        "0002_b::compatible",
        "every_path::from_0001",
        "no_drift::from_0001",
        "history",
    }
    first = pytester.runpytest("--co", "-q", "migrations/0001_t.sql")
    assert {line.split("::", 1)[-1] for line in first.stdout.lines if "::" in line} == {
        "0001_t::upgrade",
        "0001_t::data_kept",
        "0001_t::compatible",
    }
    off = pytester.runpytest("--co", "-q", "--no-tenantdb-checks")
    assert not any("migrations/" in line for line in off.stdout.lines)
    off.stdout.fnmatch_lines(["2 tests collected*"])


def test_migrations_outside_the_project_are_homed_in_its_configuration(pytester: pytest.Pytester) -> None:
    """An installed package's migrations (site-packages) have no node id under the rootdir; their
    checks live in the project's configuration file, and their ids can be pasted back."""
    elsewhere = pytester.path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\n")
    project = pytester.path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text(
        f"[pytest]\ntenantdb_migrations = {elsewhere}\ntenantdb_checks = true\ntenantdb_examples = 3\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        ids = [line for line in pytester.runpytest("--co", "-q").stdout.lines if "::" in line]
        assert ids and all(line.startswith("pytest.ini::") for line in ids), ids
        pytester.runpytest("-q", "pytest.ini::0001_t::upgrade").assert_outcomes(passed=1)
