"""The plugin as users run it, through pytester."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLE

pytest_plugins = ["pytester"]


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A user project: the example migrations and an ini that points at them."""
    shutil.copytree(EXAMPLE / "migrations", pytester.path / "migrations")
    pytester.makeini("[pytest]\ntenantdb_migrations = migrations\n")
    return pytester


def test_tenant_fleet_fixture_builds_and_migrates(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_release(tenant_fleet, tmp_path):
            fleet = tenant_fleet(count=50, versions={"head": 0.6, "head-1": 0.2, "oldest": 0.2}, seed=1)
            assert fleet.created_versions() == {11: 30, 10: 10, 1: 10}
            assert all(tmp_path in t.path.parents for t in fleet)
            report = fleet.migrate()
            assert report.ok, report
            assert fleet.versions() == {11: 50}

        def test_migrations_fixture(tenantdb_migrations, tenantdb_settings):
            assert tenantdb_migrations.head == 11
            assert tenantdb_settings.workers == 1
        """
    )
    result = project.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*= tenantdb fleet migrations =*",
            "*test_release: 50 tenants -> version 11: 20 migrated, 30 already current, 0 failed*",
        ]
    )


def test_failed_tenants_show_in_the_summary(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_drift(tenant_fleet):
            fleet = tenant_fleet(count=3, versions={6: 3}, sizes="small")
            with fleet[1].connect() as conn:
                conn.execute("CREATE VIEW recent AS SELECT id FROM notes")
            report = fleet.migrate()
            report.raise_on_failure()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FleetMigrationError: 3 tenants -> version 11: 2 migrated, 0 already current, 1 failed*",
            "step 0008_rebuild_notes (*0008_rebuild_notes.sql:18): error in view recent*"
            " -- 1 tenant: tenant-0002",
            "*= tenantdb fleet migrations =*",
            "*test_drift: 3 tenants -> version 11: 2 migrated, 0 already current, 1 failed*",
            "step 0008_rebuild_notes (*): error in view recent* -- 1 tenant: tenant-0002",
        ]
    )
    assert "pytest_tenantdb/fleet" not in result.stdout.str()


def test_tenant_db_fixture_with_marker_and_params(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        def test_default_is_head(tenant_db):
            assert tenant_db.version == 11 and tenant_db.current_version() == 11

        @pytest.mark.tenantdb(version="head-1", size="large")
        def test_marker(tenant_db):
            assert tenant_db.version == 10 and tenant_db.size == "large"

        @pytest.mark.parametrize("tenant_db", [3, "oldest"], indirect=True)
        def test_param(tenant_db):
            assert tenant_db.version in (1, 3)
            with tenant_db.connect() as conn:
                assert conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] > 0
        """
    )
    project.runpytest().assert_outcomes(passed=4)


def test_flag_overrides_ini_and_marker_overrides_both(project: pytest.Pytester) -> None:
    other = project.path / "other"
    other.mkdir()
    (other / "0001_only.sql").write_text("CREATE TABLE only_table (id INTEGER PRIMARY KEY);")
    project.makepyfile(
        """
        import pytest

        def test_flag(tenantdb_migrations, tenantdb_settings):
            assert tenantdb_migrations.head == 1
            assert tenantdb_settings.seed == 9 and tenantdb_settings.versioning == "table"

        @pytest.mark.tenantdb(migrations="migrations", workers=2)
        def test_marker(tenantdb_migrations, tenant_fleet):
            assert tenantdb_migrations.head == 11
            assert tenant_fleet.workers == 2
        """
    )
    result = project.runpytest(
        "--tenantdb-migrations", "other", "--tenantdb-seed", "9", "--tenantdb-versioning", "table"
    )
    result.assert_outcomes(passed=2)


def test_missing_migrations_folder_is_a_clear_fixture_error(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\ntenantdb_migrations = nowhere\n")
    project.makepyfile("def test_x(tenant_fleet):\n    tenant_fleet(count=1)\n")
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*MigrationSetError: cannot load migrations from *nowhere* does not exist*"])
    assert "Traceback" not in result.stdout.str() and "site-packages" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            ("--tenantdb-workers", "many"),
            "",
            "*--tenantdb-workers many is not an integer; expected an integer >= 1*",
        ),
        (
            (),
            "tenantdb_versioning = flyway",
            "*tenantdb_versioning = flyway (pytest ini) is not one of auto*",
        ),
        (("-o", "tenantdb_checks=maybe"), "", "*tenantdb_checks = maybe (pytest ini) is not true or false*"),
        ((), "tenantdb_check = true", "*unknown key 'tenantdb_check' (did you mean 'tenantdb_checks'?)*"),
        (
            ("-o", "tenantdb_exampels=3"),
            "",
            "*unknown key 'tenantdb_exampels' (did you mean 'tenantdb_examples'?)*",
        ),
    ],
)
def test_bad_settings_stop_the_run_with_a_usage_error(
    project: pytest.Pytester, args: tuple[str, ...], ini: str, message: str
) -> None:
    project.makeini(f"[pytest]\ntenantdb_migrations = migrations\n{ini}\n")
    project.makepyfile("def test_x(tenant_fleet):\n    tenant_fleet(count=1)\n")
    result = project.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()


def test_bad_marker_argument(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        import pytest

        @pytest.mark.tenantdb(colour="blue")
        def test_x(tenant_fleet):
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown argument(s)*colour*"])


def test_errors_raised_in_a_test_point_at_the_test_line(project: pytest.Pytester) -> None:
    project.makepyfile(
        """
        def test_bad_id(tenant_fleet):
            tenant_fleet(ids=["../../etc/passwd"])
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*test_errors_raised_in_a_test_point_at_the_test_line.py:2: TenantIdError: unsafe tenant id*"]
    )
    assert "fleet.py" not in result.stdout.str()


def test_templates_are_cached_between_runs(project: pytest.Pytester) -> None:
    project.makepyfile("def test_x(tenant_fleet):\n    tenant_fleet(count=20, versions=['head', 3])\n")
    project.runpytest().assert_outcomes(passed=1)
    cache = project.path / ".pytest_cache" / "d" / "tenantdb" / "templates"
    first = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.sqlite3")}
    assert any(name.startswith("v0011-") for name in first) and any("-small-" in name for name in first)
    project.runpytest().assert_outcomes(passed=1)
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.sqlite3")} == first
    (project.path / "migrations" / "0011_contract_users_name.sql").write_text(
        "-- migrate:up\nDROP TRIGGER users_sync_display_name_update;\n"
    )
    project.runpytest().assert_outcomes(passed=1)
    after = {p.name for p in cache.glob("v0011-*.sqlite3")}
    assert len(after) > len({n for n in first if n.startswith("v0011-")})


def test_without_cache_provider_templates_go_to_tmp(project: pytest.Pytester) -> None:
    project.makepyfile("def test_x(tenant_fleet):\n    assert len(tenant_fleet(count=2)) == 2\n")
    project.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert not (project.path / ".pytest_cache").exists()


def test_xdist_two_workers(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_fleet(tenant_fleet, n):
            fleet = tenant_fleet(count=30, versions={"head": 0.5, 5: 0.5}, seed=n)
            assert fleet.migrate().ok
        """
    )
    result = project.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*= tenantdb fleet migrations =*", "*test_fleet?0?: 30 tenants -> version 11*"]
    )
    names = [
        p.name for p in (project.path / ".pytest_cache" / "d" / "tenantdb" / "templates").glob("v*.sqlite3")
    ]
    assert len(names) == len(set(names))


def test_plugin_can_be_disabled(project: pytest.Pytester) -> None:
    project.makepyfile("def test_x(tenant_fleet):\n    pass\n")
    result = project.runpytest("-p", "no:tenantdb")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'tenant_fleet' not found*"])


def test_help_lists_the_options(project: pytest.Pytester) -> None:
    result = project.runpytest("--help")
    result.stdout.fnmatch_lines(["*--tenantdb-migrations*", "*tenantdb_busy_timeout*"])


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_tenantdb.plugin, pytest_tenantdb;"
        "heavy = {'sqlglot', 'faker', 'hypothesis', 'sqlite3', 'rich', 'filelock'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import pytest_tenantdb as p; print(p.MigrationSet.__name__, p.__all__[:1]); p.nope"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.stdout.startswith("MigrationSet ['CheckFailure']") and "has no attribute 'nope'" in run.stderr


def test_tenant_db_and_tenant_fleet_in_one_test(project: pytest.Pytester) -> None:
    """Both fixtures build into the test's tmp_path; each keeps to its own folder."""
    project.makeini("[pytest]\ntenantdb_migrations = migrations\n")
    project.makepyfile(
        "def test_x(tenant_db, tenant_fleet):\n"
        "    fleet = tenant_fleet(count=2)\n"
        "    assert len(fleet) == 2 and tenant_db.path.exists()\n"
    )
    project.runpytest("-q").assert_outcomes(passed=1)
