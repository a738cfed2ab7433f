"""The built-in checks, run through pytester on the good example and on each broken variant."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.conftest import BROKEN, EXAMPLE, apply_variant

pytest_plugins = ["pytester"]
ARGS = ("-p", "no:randomly", "--tenantdb-examples", "20", "-q")


def _project(pytester: pytest.Pytester, variant: str | None = None) -> pytest.Pytester:
    """The example project (its own pyproject.toml turns the checks on), maybe with a variant."""
    for name in ("migrations", "queries"):
        shutil.copytree(EXAMPLE / name, pytester.path / name)
    for name in ("schema.sql", "tenantdb.lock", "pyproject.toml"):
        shutil.copy(EXAMPLE / name, pytester.path / name)
    if variant is not None:
        apply_variant(pytester.path, variant)
    return pytester


@pytest.fixture(autouse=True)
def _ci_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")  # derandomized: the same examples on every run


def _failed(result: pytest.RunResult) -> set[str]:
    """The ids of the failed checks (a node id less its migration file: ``0008_x::upgrade``)."""
    return set(re.findall(r"^FAILED [^\s:]+::(\S+)", result.stdout.str(), re.MULTILINE))


def test_good_example_passes_every_check(pytester: pytest.Pytester) -> None:
    project = _project(pytester)
    result = project.runpytest(*ARGS)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes["passed"] >= 60
    ids = project.runpytest("--co", "-q").stdout.str()
    for expected in (
        "0008_rebuild_notes::upgrade",
        "0008_rebuild_notes::data_kept",
        "0008_rebuild_notes::round_trip",
        "every_path::from_0000",
        "no_drift::from_0010",
        "no_drift::snapshot",
        "old_code::app_0010_on_0011",
        "history",
    ):
        assert expected in ids
    assert "0007_backfill_display_name::round_trip" not in ids  # no down(): nothing to round-trip


@pytest.mark.parametrize(
    ("variant", "select", "expected", "message"),
    [
        (
            "upgrade_fails_on_nulls",
            "0008_rebuild_notes",
            {"0008_rebuild_notes::upgrade", "0008_rebuild_notes::compatible"},  # TDB106
            [
                "*upgrade: step 0008_rebuild_notes (up) failed on a tenant at version 7*",
                "*statement: INSERT INTO notes_new*",
                "*error:     NOT NULL constraint failed: notes_new.author_id*",
                "*table:     notes*",
                "*offending row: id=*, author_id=NULL, *",
                "*minimal failing tenant (hypothesis)*",
                "*saved as *0008_rebuild_notes_upgrade.sql*",
            ],
        ),
        (
            "upgrade_fails_on_nulls",
            "every_path and 0007",
            {"every_path::from_0007"},
            [
                "*every path (from 7 to head): step 0008_rebuild_notes (up) failed on a tenant at version 7*",
                "*NOT NULL constraint failed: notes_new.author_id*",
            ],
        ),
        (
            "rebuild_drops_index",
            "no_drift",
            {"no_drift::snapshot"},
            [
                "*new tenants created from schema.sql differ from tenants migrated to head*",
                "*added index notes_project_created*",
            ],
        ),
        (
            "rebuild_loses_data",
            "0008_rebuild_notes",
            {"0008_rebuild_notes::data_kept", "0008_rebuild_notes::round_trip"},
            [
                "*data kept: step 0008_rebuild_notes loses or changes data it does not write*",
                "*notes.body: row * changed * -> None*",
            ],
        ),
        (
            "down_loses_data",
            "0008_rebuild_notes",
            {"0008_rebuild_notes::round_trip"},
            ["*round trip: up -> down of 0008_rebuild_notes does not restore the data of table notes*"],
        ),
        (
            "rename_breaks_old_queries",
            "old_code",
            {"old_code::app_0011_on_0012"},
            [
                "*old code still runs: app version 11 breaks on a tenant migrated from schema version 11 to 12*",
                "*query find_note_by_title (*queries/0010.sql:7)",
                "*error at 12: OperationalError: no such column: title",
            ],
        ),
        (
            "edited_released_step",
            "history",
            {"history"},
            ["*released step 0005_index_notes_by_project was edited*revert the edit and add a new step*"],
        ),
    ],
)
def test_each_broken_variant_fails_its_check(
    pytester: pytest.Pytester, variant: str, select: str, expected: set[str], message: list[str]
) -> None:
    project = _project(pytester, variant)
    result = project.runpytest(*ARGS, "-k", select)
    assert _failed(result) == expected, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines(message)
    assert "pytest_tenantdb/" not in result.stdout.str()  # the message, not our stack


def test_replay_reruns_the_minimal_failing_tenant(pytester: pytest.Pytester) -> None:
    project = _project(pytester, "upgrade_fails_on_nulls")
    project.runpytest(*ARGS, "-k", "0008_rebuild_notes and upgrade")
    saved = project.path / ".tenantdb" / "failures" / "0008_rebuild_notes_upgrade.sql"
    text = saved.read_text()
    assert text.startswith("-- tenantdb replay\n-- check: 0008_rebuild_notes::upgrade\n-- version: 7")
    assert 'INSERT INTO "notes"' in text
    replayed = project.runpytest("--tenantdb-replay", str(saved), "-q")
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["*NOT NULL constraint failed: notes_new.author_id*"])
    shutil.copy(EXAMPLE / "migrations" / "0008_rebuild_notes.sql", project.path / "migrations")
    project.runpytest("--tenantdb-replay", str(saved), "-q").assert_outcomes(passed=1)


def test_bad_replay_files(pytester: pytest.Pytester) -> None:
    project = _project(pytester)
    bogus = project.path / "bogus.sql"
    bogus.write_text("SELECT 1;")
    result = project.runpytest("--tenantdb-replay", str(bogus))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*not a tenantdb failure file*"])
    gone = project.path / "gone.sql"
    gone.write_text("-- tenantdb replay\n-- check: 0042_nope::upgrade\n-- version: 1\n")
    result = project.runpytest("--tenantdb-replay", str(gone))
    result.stderr.fnmatch_lines(["*check '0042_nope::upgrade' does not exist*"])


def test_lock_is_written_only_on_request_and_a_missing_one_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = _project(pytester, "edited_released_step")
    lock_file = project.path / "tenantdb.lock"
    lock_file.unlink()
    monkeypatch.delenv("CI")
    result = project.runpytest("-q", "-rs", "-k", "history")
    result.assert_outcomes(skipped=1)  # on a laptop: steps may still be written, nothing locked
    result.stdout.fnmatch_lines(["*no lock file*run `tenantdb lock`*--tenantdb-update-lock*"])
    assert not lock_file.exists()  # a test run never writes it
    monkeypatch.setenv("CI", "true")
    result = project.runpytest("-q", "-k", "history")
    result.assert_outcomes(failed=1)  # in CI a gate without a lock would pass forever
    result.stdout.fnmatch_lines(["*no lock file*commit the file*"])
    project.runpytest("-q", "-k", "history", "--tenantdb-update-lock").assert_outcomes(passed=1)
    lock = lock_file.read_text()
    assert "0005 index_notes_by_project" in lock and lock.startswith("# tenantdb.lock")
    shutil.copy(EXAMPLE / "migrations" / "0005_index_notes_by_project.sql", project.path / "migrations")
    result = project.runpytest("-q", "-k", "history")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(  # both ways out: a new step, or accepting an unreleased edit
        ["*0005_index_notes_by_project was edited*revert the edit and add a new step, or*tenantdb lock*"]
    )
    project.runpytest("-q", "-k", "history", "--tenantdb-update-lock").assert_outcomes(passed=1)
    project.runpytest("-q", "-k", "history").assert_outcomes(passed=1)
    lock_file.write_text("garbage line\n")
    project.runpytest("-q", "-k", "history").assert_outcomes(failed=1)
    lock_file.write_bytes(b"0001 a \xff\xfe\n")  # not UTF-8: said, not a traceback
    result = project.runpytest("-q", "-k", "history")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*cannot read the lock file*restore it from git*"])


def test_checks_are_off_unless_asked(pytester: pytest.Pytester) -> None:
    project = _project(pytester)
    (project.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntenantdb_migrations = "migrations"\n'
    )
    project.makepyfile("def test_own():\n    pass\n")
    project.runpytest("-q").assert_outcomes(passed=1)
    result = project.runpytest("-q", "--tenantdb-checks", "-k", "0001")
    result.assert_outcomes(passed=4)  # upgrade, data_kept, round_trip, compatible of step 1


def test_window_and_bad_settings(pytester: pytest.Pytester) -> None:
    project = _project(pytester)
    ids = project.runpytest("--co", "-q", "--tenantdb-window", "2").stdout.str()
    assert "every_path::from_0010" in ids and "every_path::from_0009" in ids
    assert "every_path::from_0008" not in ids
    result = project.runpytest("--co", "-q", "--tenantdb-window", "last")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tenantdb-window last is neither a number of versions nor 'all'*"])
    result = project.runpytest("--co", "-q", "--tenantdb-queries", "nowhere")
    result.stderr.fnmatch_lines(["*queries folder */nowhere does not exist*"])


APP_CODE = """
from pytest_tenantdb import app_code

@app_code(version=11)
def titles(conn):
    return conn.execute("SELECT title FROM notes").fetchall()
"""


def test_registered_python_app_code(pytester: pytest.Pytester) -> None:
    project = _project(pytester, "rename_breaks_old_queries")
    shutil.rmtree(project.path / "queries")
    (project.path / "myapp_v11.py").write_text(APP_CODE)
    project.syspathinsert()
    result = project.runpytest(
        *ARGS, "-k", "old_code", "-o", "tenantdb_queries=", "-o", "tenantdb_app_modules=myapp_v11"
    )
    assert _failed(result) == {"old_code::app_0011_on_0012"}
    result.stdout.fnmatch_lines(
        ["*1 of its 1 queries and functions work at 11 but fail at 12", "*function myapp_v11.titles"]
    )


def test_recorded_queries_are_replayed_as_old_code(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_tenantdb.checks.appcode import REGISTRY

    for version in list(REGISTRY):  # app code another in-process run registered is not this project's
        monkeypatch.delitem(REGISTRY, version)
    project = _project(pytester)
    (project.path / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntenantdb_migrations = "migrations"\n'
    )
    project.makepyfile(
        """
        import sqlite3

        def test_app(tenant_db):
            conn = sqlite3.connect(tenant_db.path)
            conn.execute("SELECT id, title FROM notes WHERE project_id = ?", (1,)).fetchall()
            conn.execute("UPDATE notes SET title = 'x' WHERE id = 1")
            conn.close()
        """
    )
    record = project.path / "recorded.jsonl"
    project.runpytest("-q", "--tenantdb-record", str(record)).assert_outcomes(passed=1)
    lines = record.read_text().splitlines()
    assert len(lines) == 2 and '"app_version": 11' in lines[0] and "WHERE project_id = ?" in lines[0]
    shutil.copy(
        BROKEN / "rename_breaks_old_queries" / "migrations" / "0012_rename_note_title.sql",
        project.path / "migrations",
    )
    result = project.runpytest(
        *ARGS, "--tenantdb-checks", "-k", "old_code and not test_app", "-o", f"tenantdb_recorded={record}"
    )
    assert _failed(result) == {"old_code::app_0011_on_0012"}
    result.stdout.fnmatch_lines(
        ["*recorded statement 1", "*SELECT id, title FROM notes WHERE project_id = ?"]
    )


def test_checks_run_under_xdist(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project = _project(pytester)
    result = project.runpytest_subprocess(
        "-n", "2", "-q", "-k", "rebuild_notes or history", "--tenantdb-examples", "5"
    )
    result.assert_outcomes(passed=5)  # upgrade, data_kept, round_trip, compatible of 0008; history


def test_user_hypothesis_profile_wins(pytester: pytest.Pytester) -> None:
    from pytest_tenantdb.checks.items import hypothesis_settings

    config = pytester.parseconfig()
    assert hypothesis_settings(config, 0).max_examples == 100  # CI is set: the tenantdb-ci profile
    assert hypothesis_settings(config, 0).derandomize
    assert hypothesis_settings(config, 7).max_examples == 7
    from hypothesis import settings

    settings.register_profile("mine", max_examples=3)
    config = pytester.parseconfig("--hypothesis-profile", "mine")
    assert hypothesis_settings(config, 0).max_examples == 3


CREATE_ALL = """
from pathlib import Path

def create_all(conn):
    conn.executescript((Path(__file__).parent / "schema.sql").read_text())

def create_old(conn):
    conn.executescript((Path(__file__).parent / "schema.sql").read_text().replace("    display_name TEXT\\n", "    display_name TEXT, legacy TEXT\\n"))
"""


def test_schema_snapshot_from_a_callable(pytester: pytest.Pytester) -> None:
    project = _project(pytester)
    (project.path / "myorm.py").write_text(CREATE_ALL)
    project.syspathinsert()
    project.runpytest("-q", "-k", "snapshot", "-o", "tenantdb_schema=myorm:create_all").assert_outcomes(
        passed=1
    )
    result = project.runpytest("-q", "-k", "snapshot", "-o", "tenantdb_schema=myorm:create_old")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*new tenants created from myorm:create_old differ*", "*added column users.legacy*"]
    )
    bad = project.runpytest("-q", "-o", "tenantdb_schema=myorm:nope")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*tenantdb_schema = myorm:nope (pytest ini): cannot import it*"])
    missing = project.runpytest("-q", "-o", "tenantdb_schema=missing.sql")
    missing.stderr.fnmatch_lines(["*tenantdb_schema = missing.sql (pytest ini): cannot read*missing.sql*"])


def test_checker_rules_run_as_items(pytester: pytest.Pytester) -> None:
    project = _project(pytester, "rename_breaks_old_queries")
    result = project.runpytest("-q", "-k", "compatible")
    assert _failed(result) == {"0012_rename_note_title::compatible"}
    result.stdout.fnmatch_lines(
        ["*compatible: step 0012_rename_note_title is not backward compatible*", "*TDB104*", "*TDB201*"]
    )
    assert result.parseoutcomes()["passed"] == 11
