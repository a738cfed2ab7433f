"""``tenantdb scan``: versions, drift grouped by identical diff, every bad file an outcome."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main
from pytest_tenantdb.fleet.scan import Scanner, fingerprint, scan_directory
from pytest_tenantdb.migrations import MigrationSet
from tests.conftest import make_builder
from tests.realfolder import EXPECTED, state


def test_scan_reports_each_file_versions_and_drift_groups(
    real: Path, tmp_path: Path, example_migrations: MigrationSet
) -> None:
    before = state(real)
    result = scan_directory(real, make_builder(tmp_path / "b", example_migrations).templates)
    assert state(real) == before
    assert {Path(t.path).name: (t.status, t.version) for t in result.tenants} == {
        name: (status, 99 if name == "future.db" else version) for name, (status, version) in EXPECTED.items()
    }
    assert result.versions() == {11: 9, 10: 2, 1: 1, 99: 1}
    groups = result.drift_groups()
    assert [(g.version, g.changes, g.tenants) for g in groups] == [
        (11, ("missing column tags.color",), ("drift-a1", "drift-a2")),
        (11, ("extra index tags_by_color",), ("drift-b",)),
    ]
    assert groups[0].headline() == "2 tenants at version 11: missing column tags.color"
    assert result.introspected == 3  # only the tenants whose sqlite_master hash differed
    assert not result.ok and len(result.bad) == 10
    assert result.ignored == 6  # notes.txt, sub/, -wal x2, -shm, -journal
    text = result.summary()
    assert "2 tenants at version 11: missing column tags.color" in text
    assert "versions: 1: 1, 10: 2, 11: 9, 99: 1" in text
    assert "link-out: symlink: symbolic link to" in text and "out of the folder" in text
    data = result.to_dict()
    json.dumps(data)
    assert data["totals"]["drift"] == 3 and data["totals"]["symlink"] == 2
    assert data["drift_groups"][0]["count"] == 2 and data["introspected"] == 3


def test_a_clean_folder_is_ok(tmp_path: Path, example_migrations: MigrationSet) -> None:
    builder = make_builder(tmp_path, example_migrations)
    fleet = builder.build(12, {11: 6, 5: 3, 0: 3}, sizes="small")
    result = scan_directory(fleet[0].path.parent, builder.templates, "*.sqlite3")
    assert result.ok and result.totals()["ok"] == 12 and result.introspected == 0
    assert result.versions() == {11: 6, 5: 3, 0: 3}
    assert "result: clean" in result.summary()


def test_cosmetic_differences_are_drift_only_when_exact(
    tmp_path: Path, example_migrations: MigrationSet
) -> None:
    builder = make_builder(tmp_path, example_migrations)
    (tenant,) = builder.build(1, {11: 1})
    conn = sqlite3.connect(tenant.path)  # same columns, another order: SQLite behaves the same
    conn.executescript(
        "PRAGMA foreign_keys = OFF; CREATE TABLE tags2 (label TEXT NOT NULL UNIQUE, id INTEGER PRIMARY KEY, "
        "color TEXT); INSERT INTO tags2 SELECT label, id, color FROM tags; DROP TABLE tags; "
        "ALTER TABLE tags2 RENAME TO tags;"
    )
    conn.close()
    semantic = scan_directory(tenant.path.parent, builder.templates, "*.sqlite3")
    assert [t.status for t in semantic.tenants] == ["cosmetic"] and semantic.ok
    assert semantic.tenants[0].changes == (
        "changed table tags: column order (id, label, color) -> (label, id, color)",
    )
    exact = scan_directory(tenant.path.parent, builder.templates, "*.sqlite3", compare="exact")
    assert [t.status for t in exact.tenants] == ["drift"] and not exact.ok


def test_fingerprint_ignores_the_version_tables(tmp_path: Path, example_migrations: MigrationSet) -> None:
    builder = make_builder(tmp_path, example_migrations, versioning="table")
    (tenant,) = builder.build(1, {4: 1})
    scanner = Scanner(builder.templates)
    assert scanner.scan_file(tenant.path).status == "ok"
    conn = sqlite3.connect(tenant.path)
    before = fingerprint(conn)
    conn.execute("DROP TABLE schema_migrations")
    assert fingerprint(conn) == before
    conn.close()


def test_scan_cli_text_json_and_exit_codes(
    real: Path, example_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(real)
    assert main(["scan", str(real), "--project", str(example_project)]) == 1
    out = capsys.readouterr().out
    assert "2 tenants at version 11: missing column tags.color" in out
    assert main(["scan", str(real), "--project", str(example_project), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["versions"] == {"1": 1, "10": 2, "11": 9, "99": 1}
    assert {t["status"] for t in data["tenants"]} >= {"ok", "drift", "empty", "not_sqlite", "symlink"}
    assert state(real) == before

    assert main(["scan", str(real), "--project", str(example_project), "--pattern", "t-*.db"]) == 0
    assert "result: clean" in capsys.readouterr().out
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["scan", str(empty), "--project", str(example_project)]) == 0
    assert "0 tenant file(s)" in capsys.readouterr().out

    assert main(["scan", str(tmp_path / "missing"), "--project", str(example_project)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["scan", str(real), "--project", str(example_project), "--busy-timeout", "-1"]) == 2
    assert main(["scan"]) == 2


def test_scan_html_report_in_headless_chromium(
    real: Path, example_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``scan --html``: the versions histogram, the drift group with its count and diff, the
    unreadable files, as a browser shows them; the originals untouched."""
    from tests.test_html_report import chromium, headless

    before = state(real)
    page = tmp_path / "scan.html"
    assert main(["scan", str(real), "--project", str(example_project), "--html", str(page)]) == 1
    assert f"HTML report: {page}" in capsys.readouterr().out
    dom = headless(chromium(), tmp_path / "profile", "--dump-dom", page.as_uri())
    assert "tenantdb scan" in dom and "tenants per recorded version" in dom
    assert "drift at version 11" in dom and "missing column tags.color" in dom
    assert 'data-count="2"' in dom  # the two drifted tenants, one group
    assert "not_sqlite" in dom and "empty" in dom
    assert state(real) == before
    assert (
        main(["scan", str(real), "--project", str(example_project), "--html", str(tmp_path)]) == 2
    )  # a folder
