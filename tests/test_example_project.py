"""The bundled example project is itself correct: every app version's queries run on their
schema and on the next one (current minus one), and every step has been exercised."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pytest_tenantdb.errors import MigrationSetError
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.queries import QueryFolder, load_query_file
from tests.conftest import EXAMPLE, make_builder

PARAMS = {
    "id": 1,
    "email": "new.user@example.test",
    "name": "New User",
    "owner_id": 1,
    "project_id": 1,
    "author_id": 1,
    "title": "A fresh title",
    "body": "text",
    "label": "fresh-label",
    "color": "red",
    "note_id": 1,
    "tag_id": 1,
}


def _run_all(conn: sqlite3.Connection, folder: QueryFolder, app_version: int) -> None:
    for query in folder.for_version(app_version):
        try:
            conn.execute(query.sql, PARAMS)
        except sqlite3.Error as exc:  # pragma: no cover - only on a broken example
            pytest.fail(f"app {app_version} query {query.name} ({query.location}) failed: {exc}")


def test_app_queries_run_on_their_version_and_the_next(
    tmp_path: Path, example_migrations: MigrationSet
) -> None:
    folder = QueryFolder(EXAMPLE / "queries")
    assert folder.app_versions == (1, 3, 4, 7, 8, 10)
    builder = make_builder(tmp_path, example_migrations)
    versions = example_migrations.versions
    for app_version in versions:
        schemas = [app_version, *[v for v in versions if v > app_version][:1]]
        for schema_version in schemas:
            tenant = builder.tenant(schema_version, tenant_id=f"t{app_version}-{schema_version}")
            with tenant.connect() as conn:
                _run_all(conn, folder, app_version)


def test_dropping_name_really_breaks_app_version_9(tmp_path: Path, example_migrations: MigrationSet) -> None:
    """The contract step is only safe because app 10 stopped using users.name: prove the check bites."""
    tenant = make_builder(tmp_path, example_migrations).tenant(11)
    create_user_v9 = next(
        q for q in QueryFolder(EXAMPLE / "queries").for_version(9) if q.name == "create_user"
    )
    with (
        tenant.connect() as conn,
        pytest.raises(sqlite3.OperationalError, match="no column named name"),
    ):
        conn.execute(create_user_v9.sql, PARAMS)


def test_query_files_plain_and_bad(tmp_path: Path) -> None:
    plain = tmp_path / "0001.sql"
    plain.write_text("SELECT 1;\n\nSELECT 2;\n")
    assert [(q.name, q.line) for q in load_query_file(plain)] == [("0001:1", 1), ("0001:2", 3)]
    two = tmp_path / "0002.sql"
    two.write_text("-- name: a\nSELECT 1; SELECT 2;\n")
    with pytest.raises(MigrationSetError, match="exactly one statement"):
        load_query_file(two)
    with pytest.raises(MigrationSetError, match="does not exist"):
        QueryFolder(tmp_path / "nope")
    (tmp_path / "01_dupe.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationSetError, match="two query files for app version 1"):
        QueryFolder(tmp_path)
    assert QueryFolder(EXAMPLE / "queries").for_version(0) == []


def test_example_has_the_promised_steps(example_migrations: MigrationSet) -> None:
    kinds = {s.name: type(s).__name__ for s in example_migrations}
    assert len(example_migrations) >= 8
    assert kinds["backfill_display_name"] == "PythonStep"
    assert "rebuild_notes" in kinds and "index_notes_by_project" in kinds
    assert "expand_display_name" in kinds and "contract_users_name" in kinds
