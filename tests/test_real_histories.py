"""Real public histories, installed from PyPI through the dev extras, loaded as they are shipped.

- ihatemoney 7.2.1: 13 Alembic revisions, a Flask app's env.py.
- prefect 3.9.1: 115 Alembic revisions in versions/sqlite, with autocommit blocks.
- optuna 5.0.0: 10 Alembic revisions whose env.py builds its own engine (so they run straight from
  the revision scripts); its downgrade from v3.0.0.c crashes half way through a batch rebuild.
- Django 5.2's contrib apps and django-taggit: Django migrations through Django's executor.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import version_store
from tests.conftest import ROOT, make_builder

OPTUNA_REVISIONS = [
    "v0.9.0.a",
    "v1.2.0.a",
    "v1.3.0.a",
    "v2.4.0.a",
    "v2.6.0.a",
    "v3.0.0.a",
    "v3.0.0.b",
    "v3.0.0.c",
    "v3.0.0.d",
    "v3.2.0.a",
]


def optuna_history() -> Path:
    spec = importlib.util.find_spec("optuna")
    assert spec is not None and spec.origin is not None, "optuna is a dev dependency"
    return Path(spec.origin).parent / "storages" / "_rdb" / "alembic"


def test_optuna_loads_as_shipped_and_migrates_a_fleet(tmp_path: Path) -> None:
    migrations = MigrationSet.from_path(optuna_history())
    assert [s.name for s in migrations] == OPTUNA_REVISIONS
    assert all(s.env is None for s in migrations)  # type: ignore[attr-defined]  # env.py makes its own engine
    fleet = make_builder(tmp_path, migrations, "auto")(
        versions={"alembic:v2.6.0.a": 3, "head-1": 2}, sizes="empty"
    )  # optuna's data migrations parse JSON and enum values that Faker cannot know: schema-only tenants
    fleet.migrate().raise_on_failure()
    for tenant in fleet:
        conn = sqlite3.connect(tenant.path)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("v3.2.0.a",)]
        conn.close()


def test_optunas_broken_downgrade_is_reported_and_loses_nothing(
    tmp_path: Path, pytester: pytest.Pytester
) -> None:
    migrations = MigrationSet.from_path(optuna_history())
    fleet = make_builder(tmp_path, migrations, "auto")(versions={"alembic:v3.0.0.c": 2}, sizes="empty")
    before = {t.id: t.path.read_bytes() for t in fleet}
    report = fleet.migrate(to="alembic:v3.0.0.b")
    assert len(report.failed) == 2
    failure = report.failed[0]
    assert failure.step == "0008_v3.0.0.c" and "FloatTypeEnum" in (failure.error or "")
    assert (failure.location or "").endswith("v3.0.0.c.py:191")
    for tenant in fleet:  # restored byte for byte: no half-done batch, no _alembic_tmp_ table
        assert tenant.path.read_bytes() == before[tenant.id]
        conn = sqlite3.connect(tenant.path)
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master")]
        assert not [n for n in names if n.startswith("_alembic_tmp")]
        conn.close()

    # the built-in checks report it as a user runs them
    pytester.makeini(f"[pytest]\ntenantdb_migrations = {optuna_history()}\ntenantdb_checks = true\n")
    result = pytester.runpytest("-k", "v3.0.0.c and round_trip")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*round trip: step 0008_v3.0.0.c (down) failed on a tenant at version 8*",
            "*v3.0.0.c.py:191*",
            "*AttributeError: type object 'IntermediateValueModel' has no attribute 'FloatTypeEnum'*",
        ]
    )


def test_ihatemoney_runs_up_and_down_from_its_package(tmp_path: Path) -> None:
    """ihatemoney 7.2.1: 13 hash-named revisions whose env.py needs a Flask app, so they run
    straight from the scripts (they import the app's models and a currency converter)."""
    spec = importlib.util.find_spec("ihatemoney")
    assert spec is not None and spec.origin is not None, "ihatemoney is a dev dependency"
    migrations = MigrationSet.from_path(Path(spec.origin).parent / "migrations")
    assert len(migrations) == 13 and migrations[0].name == "b9a10d5d63ce"
    assert migrations[-1].ident == "alembic:c941aaca38c2"
    fleet = make_builder(tmp_path, migrations, "auto")(versions={"oldest": 2, "head-3": 2}, sizes="empty")
    fleet.migrate().raise_on_failure()
    assert fleet.versions() == {13: 4}
    fleet.migrate(to="empty").raise_on_failure()
    for tenant in fleet:
        conn = sqlite3.connect(tenant.path)
        assert conn.execute("SELECT COUNT(*) FROM alembic_version").fetchone()[0] == 0
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'bill'").fetchone()
        conn.close()


PREFECT_FIRST, PREFECT_HEAD = "9725c1cbee35", "27d8f4e1a6c9"


def test_prefects_115_sqlite_revisions_run_up_and_down(tmp_path: Path) -> None:
    """prefect 3.9.1 keeps one folder of revisions per dialect (versions/sqlite): 115 date-prefixed
    files; eight data migrations batch their writes in op.get_context().autocommit_block()."""
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None, "prefect is a dev dependency"
    folder = Path(spec.origin).parent / "server" / "database" / "_migrations" / "versions" / "sqlite"
    migrations = MigrationSet.from_path(folder)
    assert len(migrations) == 115
    assert (migrations[0].name, migrations[-1].name) == (PREFECT_FIRST, PREFECT_HEAD)
    assert migrations[0].path.name.startswith("2022_01_20_")  # date-prefixed: not a version number
    autocommit = migrations.resolve("alembic:db6bde582447")  # backfill_state_name, autocommit_block
    fleet = make_builder(tmp_path, migrations, "auto")(
        versions={autocommit - 1: 1, "head-20": 1}, sizes="empty"
    )
    fleet.migrate().raise_on_failure()
    assert fleet.versions() == {115: 2}
    report = fleet.migrate(to=autocommit - 1)
    report.raise_on_failure()
    for tenant in fleet:
        conn = sqlite3.connect(tenant.path)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (migrations[autocommit - 2].name,)
        ]
        conn.close()


DJANGO_APPS = "django:auth,contenttypes,sessions,admin,taggit"


@pytest.fixture
def django_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    project = ROOT / "fixtures" / "django_project"
    if str(project) not in sys.path:
        sys.path.insert(0, str(project))
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_project_settings"


@pytest.mark.usefixtures("django_settings")
def test_django_contrib_and_taggit_run_up_and_down(tmp_path: Path) -> None:
    migrations = MigrationSet.from_path(DJANGO_APPS)
    names = [s.name for s in migrations]
    assert len(names) == 24 and names[0] == "contenttypes.0001_initial"
    assert {
        "auth.0012_alter_user_first_name_max_length",
        "taggit.0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx",
    } <= set(names)
    fleet = make_builder(tmp_path, migrations, "auto")(
        versions={"django:auth.0008": 2, "django:taggit.0003": 2}, sizes="small"
    )
    fleet.migrate().raise_on_failure()
    assert fleet.versions() == {migrations.head: 4}
    report = fleet.migrate(to="django:contenttypes.0001")
    report.raise_on_failure()
    store = version_store("auto", migrations)
    for tenant in fleet:
        conn = sqlite3.connect(tenant.path)
        assert store.read(conn) == 1
        assert conn.execute("SELECT app, name FROM django_migrations").fetchall() == [
            ("contenttypes", "0001_initial")
        ]
        conn.close()
