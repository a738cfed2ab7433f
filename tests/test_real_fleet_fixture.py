"""The ``real_fleet`` fixture as users run it (pytester): copies of a folder of real tenants."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pytest_tenantdb.migrations import MigrationSet
from tests.conftest import EXAMPLE
from tests.realfolder import make_real_folder, state

pytest_plugins = ["pytester"]


@pytest.fixture
def project(
    pytester: pytest.Pytester, tmp_path: Path, example_migrations: MigrationSet
) -> tuple[pytest.Pytester, Path]:
    shutil.copytree(EXAMPLE / "migrations", pytester.path / "migrations")
    (tmp_path / "prod").mkdir()
    real = make_real_folder(tmp_path / "prod", example_migrations).folder
    pytester.makepyprojecttoml(f'[tool.tenantdb]\nmigrations = "migrations"\ntenants = "{real}"\n')
    return pytester, real


def test_real_fleet_copies_migrates_and_queries_without_touching_the_originals(
    project: tuple[pytest.Pytester, Path],
) -> None:
    pytester, real = project
    before = state(real)
    pytester.makepyfile(
        """
        def test_release(real_fleet, tmp_path):
            assert all(tmp_path in t.path.parents for t in real_fleet)
            assert {p.status for p in real_fleet.skipped} == {"symlink"}
            users = real_fleet.query("SELECT count(*) FROM users")
            report = real_fleet.migrate()
            assert {o.tenant for o in report.failed} == {"zero", "text", "future"}
            after = real_fleet.query("SELECT count(*) FROM users")
            assert after.scalars() == users.scalars()

        def test_pattern(real_fleet):
            assert sorted(t.id for t in real_fleet) == ["wal-clean", "wal-noshm", "wal-shm"]
        """
    )
    result = pytester.runpytest(
        "-p", "no:randomly", "-o", "tenantdb_tenants_pattern=wal-*.db", "-k", "pattern"
    )
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:randomly", "-k", "release")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_release: 17 tenants -> version 11: *, 3 failed*"])
    assert state(real) == before


def test_marker_and_missing_setting(project: tuple[pytest.Pytester, Path]) -> None:
    pytester, real = project
    (pytester.path / "pyproject.toml").write_text('[tool.tenantdb]\nmigrations = "migrations"\n')
    pytester.makepyfile(
        f"""
        import pytest

        def test_unset(real_fleet):
            pass

        @pytest.mark.tenantdb(tenants={str(real)!r}, tenants_pattern="t-*.db")
        def test_marker(real_fleet):
            assert len(real_fleet) == 6 and real_fleet.migrate().ok
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*ConfigError: real_fleet needs a folder of tenant files*tenantdb_tenants*"])
