"""``fleet.query``: read-only, ATTACHed in batches, per-tenant rows and failures, reduce."""

from __future__ import annotations

import contextlib
import math
import sqlite3
from pathlib import Path

import pytest

from pytest_tenantdb.errors import QueryError, ReadOnlyQueryError
from pytest_tenantdb.fleet.fleet import Fleet
from pytest_tenantdb.fleet.query import attach_limit, qualifier, query_files
from pytest_tenantdb.migrations import MigrationSet
from tests.conftest import make_builder
from tests.realfolder import state


@pytest.fixture
def fleet(tmp_path: Path, example_migrations: MigrationSet) -> Fleet:
    return make_builder(tmp_path, example_migrations).build(25, {11: 15, 2: 10}, sizes="small", seed=2)


def _rows(fleet: Fleet, sql: str) -> dict[str, int]:
    counts = {}
    for tenant in fleet:
        with tenant.connect() as conn, contextlib.suppress(sqlite3.OperationalError):
            counts[tenant.id] = conn.execute(sql).fetchone()[0]
    return counts


def test_row_counts_per_tenant_and_reduced(fleet: Fleet) -> None:
    result = fleet.query("SELECT count(*) FROM users", reduce=lambda rows: sum(r[1] for r in rows))
    assert result.ok and result.attached
    assert result.scalars() == _rows(fleet, "SELECT count(*) FROM users")
    assert result.reduced == sum(result.scalars().values())
    assert result.columns == ("count(*)",)
    assert result.batches == math.ceil(25 / attach_limit())
    assert result.rows[0][0] == fleet[0].id  # every row tagged with its tenant


def test_row_counts_before_and_after_migrate(fleet: Fleet) -> None:
    """The fleet invariant a release test checks: no tenant loses a user."""
    before = fleet.query("SELECT count(*) FROM users").scalars()
    assert fleet.migrate().ok
    after = fleet.query("SELECT count(*) FROM users").scalars()
    assert after == before


def test_a_missing_table_on_old_tenants_is_an_outcome(fleet: Fleet) -> None:
    result = fleet.query("SELECT id, title FROM notes WHERE id <= ? ORDER BY id", (2,))
    old = {t.id for t in fleet if t.version == 2}
    assert {t.tenant for t in result.failed} == old
    assert all(t.status == "failed" and t.error == "no such table: notes" for t in result.failed)
    assert set(result.by_tenant()) == {t.id for t in fleet} - old
    with pytest.raises(QueryError, match="failed on 10 of 25 tenants"):
        result.raise_on_failure()
    assert fleet.migrate().ok
    assert fleet.query("SELECT id FROM notes").ok


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO users (email) VALUES ('x@y')",
        "UPDATE users SET email = 'x'",
        "DELETE FROM users",
        "DROP TABLE users",
        "CREATE TABLE x (y)",
        "PRAGMA user_version = 3",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "VACUUM",
        "WITH d AS (SELECT 1) DELETE FROM users",
    ],
)
def test_writes_are_refused_before_any_tenant_changes(fleet: Fleet, sql: str) -> None:
    folder = fleet[0].path.parent
    before = state(folder)
    with pytest.raises(ReadOnlyQueryError, match="read-only"):
        fleet.query(sql)
    assert state(folder) == before


def test_bad_queries_are_errors_of_the_query(fleet: Fleet) -> None:
    with pytest.raises(QueryError, match="one statement"):
        fleet.query("SELECT 1; SELECT 2")
    with pytest.raises(QueryError, match="SELECT"):
        fleet.query("  ")
    with pytest.raises(QueryError, match="batch_size"):
        fleet.query("SELECT 1", batch_size=0)
    with pytest.raises(QueryError, match="cannot run"):
        fleet.query("SELECT ? + ?", (1,))


def test_batches_never_exceed_the_attach_limit(fleet: Fleet) -> None:
    assert attach_limit() >= 1
    assert fleet.query("SELECT 1", batch_size=1000).batches == math.ceil(25 / attach_limit())
    three = fleet.query("SELECT count(*) FROM users", batch_size=3)
    assert three.batches == 9 and three.scalars() == fleet.query("SELECT count(*) FROM users").scalars()


def test_names_are_qualified_but_ctes_and_main_resolve_to_each_tenant(fleet: Fleet) -> None:
    sql = (
        "WITH recent AS (SELECT id FROM main.users ORDER BY id DESC LIMIT 2) "
        "SELECT count(*) FROM recent JOIN users u ON u.id = recent.id"
    )
    assert set(fleet.query(sql).scalars().values()) <= {0, 1, 2}
    assert fleet.query(sql).scalars() == _rows(fleet, sql)
    assert qualifier("SELECT * FROM users")("t0") == 'SELECT * FROM "t0".users'  # type: ignore[misc]
    multi = "SELECT 'héllo ✓'\n  FROM users\n WHERE id IN (SELECT x FROM notes) -- FROM tags"
    assert qualifier(multi)("t") == (  # type: ignore[misc]
        'SELECT \'héllo ✓\'\n  FROM "t".users\n WHERE id IN (SELECT x FROM "t".notes) -- FROM tags'
    )
    assert qualifier("PRAGMA user_version") is None
    assert qualifier("SELECT * FROM pragma_table_info('users')") is None


def test_queries_that_cannot_be_qualified_run_on_each_tenant_alone(fleet: Fleet) -> None:
    result = fleet.query("PRAGMA user_version")
    assert not result.attached and result.scalars() == {t.id: t.version for t in fleet}
    tables = fleet.query("SELECT name FROM pragma_table_list WHERE name = 'notes'")
    assert {t for t, rows in tables.by_tenant().items() if rows} == {t.id for t in fleet if t.version == 11}
    master = fleet.query("SELECT count(*) FROM sqlite_master WHERE name = 'notes'")
    assert master.attached and sum(master.scalars().values()) == 15


def test_bad_files_are_outcomes(tmp_path: Path, fleet: Fleet) -> None:
    (tmp_path / "zero.db").write_bytes(b"")
    (tmp_path / "text.db").write_text("hello" * 40)
    files = [("zero", tmp_path / "zero.db"), ("text", tmp_path / "text.db"), ("gone", tmp_path / "gone.db")]
    files += [(t.id, t.path) for t in fleet][:2]
    result = query_files(files, "SELECT count(*) FROM users")
    assert [(t.tenant, t.status) for t in result.tenants] == [
        ("zero", "empty"),
        ("text", "not_sqlite"),
        ("gone", "unreadable"),
        (fleet[0].id, "ok"),
        (fleet[1].id, "ok"),
    ]
    json_ready = result.to_dict()
    assert json_ready["failed"] == 3
