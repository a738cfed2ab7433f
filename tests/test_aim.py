"""Step-aware data: the tenants drawn for step v's checks are aimed at what v adds or tightens."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, find, settings

from pytest_tenantdb.checks.aim import aimed, edges
from pytest_tenantdb.errors import SeedingError
from pytest_tenantdb.strategies import TenantData, tenant_data
from tests.conftest import schema_from_sql

BEFORE = (
    "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT NOT NULL, nick TEXT, age INTEGER, score TEXT,"
    " team_id INTEGER);\nCREATE UNIQUE INDEX u_email ON u (email);\nCREATE TABLE team (id INTEGER PRIMARY KEY);\n"
)
AFTER = (
    "CREATE TABLE team (id INTEGER PRIMARY KEY);\n"
    "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT NOT NULL, nick TEXT NOT NULL, "
    "age INTEGER CHECK (age BETWEEN 0 AND 150), score INTEGER, team_id INTEGER REFERENCES team (id));\n"
    "CREATE UNIQUE INDEX u_email ON u (email);\nCREATE UNIQUE INDEX u_email_ci ON u (lower(email));\n"
)


def test_the_edges_of_a_step_come_from_its_schemas() -> None:
    found = {str(e): e for e in edges(schema_from_sql(BEFORE), schema_from_sql(AFTER))}
    assert set(found) == {
        "duplicate u(email)",  # case-insensitive: the exact UNIQUE it had does not imply it
        "null u(nick)",
        "outside u(age)",
        "affinity u(score)",
        "orphan u(team_id)",
    }
    assert found["duplicate u(email)"].folded
    assert found["outside u(age)"].values == (-1, 151)


FAST = settings(max_examples=500, database=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize(
    ("what", "reached"),
    [
        (
            "case variants",
            lambda rows: len({r["email"] for r in rows}) > len({str(r["email"]).lower() for r in rows}),
        ),
        ("a NULL", lambda rows: any(r.get("nick") is None for r in rows)),
        ("a value outside the new CHECK", lambda rows: any(r.get("age") in (-1, 151) for r in rows)),
        (
            "a value of the wrong affinity",
            lambda rows: any(r.get("score") in ("not a number", "12abc") for r in rows),
        ),
        ("an orphan", lambda rows: any(r.get("team_id") == 987654321 for r in rows)),
    ],
)
def test_each_kind_of_edge_is_drawn(what: str, reached: object) -> None:
    before = schema_from_sql(BEFORE)
    strategy = aimed(tenant_data(before, max_rows=4), before, schema_from_sql(AFTER))
    found: TenantData = find(strategy, lambda d: reached(d.rows.get("u", [])), settings=FAST)  # type: ignore[operator]
    assert found.rows["u"], what


def test_a_case_insensitive_unique_is_found_within_the_default_budget(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held-out bug of the issue: data valid before the step holds "a@x.com" and "A@x.com"."""
    monkeypatch.setenv("CI", "true")  # the derandomized CI profile, its default number of examples
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_u.sql").write_text(
        "CREATE TABLE u (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\nCREATE UNIQUE INDEX u_email ON u (email);\n"
    )
    (migrations / "0002_ci.sql").write_text("CREATE UNIQUE INDEX u_email_ci ON u (email COLLATE NOCASE);\n")
    pytester.makeini("[pytest]\ntenantdb_checks = true\n")
    result = pytester.runpytest("-k", "0002_ci and upgrade")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*UNIQUE constraint failed: u.email*"])


def test_without_edges_the_strategy_is_the_plain_one(tmp_path: Path) -> None:
    schema = schema_from_sql(BEFORE)
    base = tenant_data(schema)
    assert aimed(base, schema, schema) is base


def test_ddl_that_depends_on_the_data_fails_at_the_step_that_does_it(pytester: pytest.Pytester) -> None:
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\n")
    (migrations / "0002_maybe_index.py").write_text(
        "def up(conn):\n"
        "    if conn.execute('SELECT COUNT(*) FROM t').fetchone()[0]:\n"
        "        conn.execute('CREATE INDEX ix_t_a ON t (a)')\n"
    )
    (migrations / "0003_more.sql").write_text("ALTER TABLE t ADD COLUMN b TEXT;\n")
    pytester.makeini("[pytest]\ntenantdb_checks = true\ntenantdb_examples = 20\ntenantdb_window = 0\n")
    result = pytester.runpytest("-k", "upgrade")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*upgrade: step 0002_maybe_index leaves another schema on this tenant's data than on an empty tenant*",
            "*added index ix_t_a*",
        ]
    )


def test_a_step_that_cannot_build_its_template_fails_once_and_the_rest_point_to_it(
    pytester: pytest.Pytester,
) -> None:
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\n")
    (migrations / "0002_broken.sql").write_text("CREATE INDEX ix ON t (missing_column);\n")
    (migrations / "0003_c.sql").write_text("ALTER TABLE t ADD COLUMN c TEXT;\n")
    (migrations / "0004_d.sql").write_text("ALTER TABLE t ADD COLUMN d TEXT;\n")
    pytester.makeini("[pytest]\ntenantdb_checks = true\ntenantdb_examples = 5\n")
    result = pytester.runpytest("-p", "no:randomly", "-rs", "-k", "not compatible and not history")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1, result.stdout.str()  # once, at the first item that needs the step
    assert outcomes["skipped"] == 7  # every later item, pointing at the failed one
    result.stdout.fnmatch_lines(["*needs a template that step 0002_broken cannot build: see *"])


def test_contradictory_checks_are_reported_as_not_run(pytester: pytest.Pytester) -> None:
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL CHECK (x > 10 AND x < 5));\n"
    )
    (migrations / "0002_y.sql").write_text("ALTER TABLE t ADD COLUMN y TEXT;\n")
    pytester.makeini("[pytest]\ntenantdb_checks = true\ntenantdb_examples = 5\n")
    result = pytester.runpytest("-rs", "-k", "0002_y and (upgrade or data_kept)")
    result.assert_outcomes(skipped=2)  # upgrade and data_kept of step 2: not run, not passed
    result.stdout.fnmatch_lines(["*not run: table t: no value of x satisfies its CHECKs (between 11 and 4)*"])


def test_a_nullable_column_with_contradictory_checks_still_takes_null() -> None:
    schema = schema_from_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER CHECK (x > 10 AND x < 5));")
    tenant_data(schema)  # no error: NULL satisfies the CHECK
    with pytest.raises(SeedingError, match="no value of x satisfies"):
        tenant_data(
            schema_from_sql(
                "CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER NOT NULL CHECK (x BETWEEN 5 AND 1));"
            )
        )


def test_a_slow_item_says_what_it_is_doing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    # the module the inner run will use (pytester's in-process runs drop modules they imported)
    items = importlib.import_module("pytest_tenantdb.checks.items")
    monkeypatch.setattr(items, "SLOW_ITEM_SECONDS", 0.05)  # 10 s in real runs
    migrations = pytester.path / "migrations"
    migrations.mkdir()
    (migrations / "0001_t.sql").write_text("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT);\n")
    (migrations / "0002_slow.py").write_text(
        "import time\n\n\ndef up(conn):\n    time.sleep(0.02)\n    conn.execute('ALTER TABLE t ADD COLUMN b')\n"
    )
    pytester.makeini("[pytest]\ntenantdb_checks = true\ntenantdb_examples = 10\n")
    result = pytester.runpytest("-k", "0002_slow and upgrade")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*tenantdb::0002_slow::upgrade: * s, * drawn tenants of at most 10 so far (upgrade check from version 1)*"
        ]
    )
