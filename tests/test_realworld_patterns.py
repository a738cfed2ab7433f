"""Minimal projects distilled from real Alembic and Django histories (fixtures/realworld_patterns),
each run as a user would: ``tenantdb check`` and ``pytest`` with the built-in checks. Each test
holds the right verdict of its pattern (see the folder's README for where it came from)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main
from pytest_tenantdb.schema import Schema

PATTERNS = Path(__file__).parent.parent / "fixtures" / "realworld_patterns"

#: folder -> the findings ``tenantdb check`` must make: (code, file, line), nothing more
CHECK: dict[str, list[tuple[str, str, int]]] = {
    "A_tdb110_intermediate": [],  # passes through an intermediate schema and back
    "B_tdb114_explicit_drop_index": [],  # the index is dropped on purpose; slug is a new, all-NULL column
    "C_fk_on_delete_change": [],  # only the FK's ON DELETE changes
    "D_data_kept_pk_change": [],  # a wider primary key cannot be violated
    "E_fts5": [],  # valid SQLite: notes only (below)
    "F_finding_line": [("TDB102", "0002_drop_y.sql", 3)],  # the rebuild's CREATE, not line 1
    "G_tdb105_location": [("TDB105", "0002_kind.sql", 2)],  # the rebuild drops the default
    "H_empty_step": [],
    "J_varchar_length": [],  # SQLite does not enforce VARCHAR lengths
    "K_tdb108_widened_unique": [],
    "L_new_rowid_pk": [],  # INTEGER PRIMARY KEY is the rowid
    "M_tdb114_index_renamed": [],
    "N_round_trip_fk_order": [],
    "O_round_trip_index_asc": [],
    "P_tdb114_index_on_dropped_column": [("TDB102", "0002_drop_b.sql", 1)],  # one finding: the drop
    "Q_data_kept_drop_recreate": [],
}
#: folder -> built-in check items that must fail, with a phrase their report must contain
FAILING: dict[str, dict[str, str]] = {
    "Q_data_kept_drop_recreate": {
        "0002_recreate::data_kept": "drops the table and creates it again without copying its rows"
    },
}


def _project(name: str, where: Path) -> Path:
    project = where / name
    shutil.copytree(PATTERNS / name, project, ignore=shutil.ignore_patterns(".tenantdb"))
    return project


def _check(project: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, object]]]:
    import json

    code = main(["check", str(project), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(CHECK))
def test_tenantdb_check_gives_the_right_verdict(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings = _check(_project(name, tmp_path), capsys)
    gating = [f for f in findings if f["severity"] != "note"]
    got = sorted((str(f["code"]), Path(str(f["file"])).name, int(str(f["line"]))) for f in gating)
    assert got == sorted(CHECK[name]), findings
    assert code == (1 if gating else 0)
    for found in gating:  # every finding cites the statement it is about, and says "may"
        assert found["statement"] and found["subject"]
        if found["code"] in ("TDB101", "TDB102"):
            assert "may still use" in str(found["message"])  # no app code is configured


def test_valid_sqlite_that_sqlglot_cannot_read_is_a_note_not_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, findings = _check(_project("E_fts5", tmp_path), capsys)
    assert code == 0
    assert [(f["code"], f["severity"], f["line"]) for f in findings] == [
        ("TDB001", "note", 2),
        ("TDB001", "note", 2),
    ]
    assert "CREATE VIRTUAL TABLE" in str(findings[0]["message"])
    assert "was checked" in str(findings[0]["message"])  # says what was and was not checked


def test_a_real_affinity_change_is_still_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for new_type, affinity in (("JSON", "NUMERIC"), ("INTEGER", "INTEGER")):
        project = _project("J_varchar_length", tmp_path / new_type)
        step = project / "migrations" / "0002_longer.sql"
        step.write_text(step.read_text().replace("VARCHAR(150)", new_type))
        code, findings = _check(project, capsys)
        assert code == 1
        assert [(f["code"], f["line"]) for f in findings] == [("TDB107", 1)]
        assert f"affinity TEXT -> {affinity}" in str(findings[0]["message"])
        assert "VARCHAR(30) -> " + new_type in str(findings[0]["message"])


def test_a_rename_through_a_rebuild_is_one_finding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seen on real histories: INSERT INTO tmp (new) SELECT old came out as TDB102 + TDB105 + TDB114."""
    project = tmp_path / "rename"
    (project / "migrations").mkdir(parents=True)
    (project / "pyproject.toml").write_text('[tool.tenantdb]\nmigrations = "migrations"\n')
    (project / "migrations" / "0001_t.sql").write_text(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT NOT NULL);\nCREATE INDEX ix_t_a ON t (a);\n"
    )
    (project / "migrations" / "0002_rename.sql").write_text(
        "CREATE TABLE t_tmp (id INTEGER PRIMARY KEY, b TEXT NOT NULL);\n"
        "INSERT INTO t_tmp (id, b) SELECT id, a FROM t;\n"
        "DROP TABLE t;\n"
        "ALTER TABLE t_tmp RENAME TO t;\n"
        "CREATE INDEX ix_t_b ON t (b);\n"
    )
    code, findings = _check(project, capsys)
    assert code == 1
    assert [(f["code"], f["line"], f["subject"]) for f in findings] == [("TDB104", 1, "column t.a")]
    assert "renamed to b by the rebuild" in str(findings[0]["message"])


@pytest.mark.parametrize("name", sorted(CHECK))
def test_the_built_in_checks_give_the_right_verdict(
    name: str, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")  # the derandomized CI profile: the same examples every run
    for item in (PATTERNS / name).iterdir():
        if item.name != ".tenantdb":
            (shutil.copytree if item.is_dir() else shutil.copy)(item, pytester.path / item.name)
    # the history as released: its lock written (a test run never writes one by itself)
    result = pytester.runpytest(
        "-o", "tenantdb_examples=25", "-W", "error::UserWarning", "--tenantdb-update-lock"
    )
    failing = dict(FAILING.get(name, {}))
    for code, file, _ in CHECK[name]:  # the `compatible` items give tenantdb check's findings
        failing[f"{file.removesuffix('.sql')}::compatible"] = code
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == len(failing), result.stdout.str()
    assert outcomes.get("passed", 0) > 0
    for item, phrase in failing.items():
        result.stdout.fnmatch_lines([f"*FAILED *::{item}*"])
        assert phrase in result.stdout.str()


def test_shadow_tables_are_known_and_never_drawn(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "t.db")
    for statement in (PATTERNS / "E_fts5" / "migrations" / "0001_r.sql").read_text().split(";"):
        if statement.strip():
            conn.execute(statement)
    schema = Schema.from_connection(conn)
    conn.close()
    assert schema.tables["r_fts"].kind == "virtual"
    shadows = {n for n, t in schema.tables.items() if t.kind == "shadow"}
    assert shadows == {"r_fts_data", "r_fts_idx", "r_fts_docsize", "r_fts_config"}
    assert {schema.tables[n].shadow_of for n in shadows} == {"r_fts"}
    assert schema.insert_order() == ["r"]  # the seeder draws rows for r only


def test_the_text_summary_counts_notes_apart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(_project("E_fts5", tmp_path))]) == 0
    assert capsys.readouterr().out.rstrip().endswith("0 findings, 2 notes")


def test_notes_are_notes_in_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    from xml.etree import ElementTree as ET

    project = _project("E_fts5", tmp_path)
    assert main(["check", str(project), "--format", "sarif"]) == 0
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert {r["level"] for r in results} == {"note"}
    assert main(["check", str(project), "--format", "github"]) == 0
    assert capsys.readouterr().out.count("::notice ") == 2
    assert main(["check", str(project), "--format", "junit"]) == 0
    suite = ET.fromstring(capsys.readouterr().out)
    assert (suite.get("failures"), suite.get("skipped")) == ("0", "2")
