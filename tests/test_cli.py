"""The tenantdb command."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main
from tests.conftest import EXAMPLE


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_versions_lists_steps(capsys: pytest.CaptureFixture[str], write_migrations) -> None:  # type: ignore[no-untyped-def]
    path = write_migrations({"0001_a.sql": "CREATE TABLE a (x);", "0003_b.py": "def up(c): pass\n"})
    assert main(["versions", str(path)]) == 0
    out = capsys.readouterr().out
    assert "PythonStep" in out and "gaps in numbering (allowed): [2]" in out


def test_demo_migrates_fleet_and_snapshots_without_touching_the_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digest(EXAMPLE)
    assert main(["demo", str(EXAMPLE), "--count", "40", "--workers", "2", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "built 40 fake tenants" in out and "copied 3 real tenant snapshots" in out
    assert "initech: failed at step 0008_rebuild_notes" in out
    assert "restored byte-identical" in out
    assert _digest(EXAMPLE) == before


def test_demo_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "demo",
                str(EXAMPLE),
                "--count",
                "10",
                "--workers",
                "1",
                "--workdir",
                str(tmp_path),
                "--json",
            ]
        )
        == 0
    )
    reports = json.loads(capsys.readouterr().out)
    assert reports[0]["totals"]["failed"] == 0 and sum(reports[0]["totals"].values()) == 10
    assert reports[1]["totals"] == {"migrated": 2, "current": 0, "failed": 1}


def test_input_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["versions", str(tmp_path / "missing")]) == 2
    assert "MigrationSetError" in capsys.readouterr().err
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_a.sql").write_bytes(b"\xff\xfe")
    assert main(["versions", str(tmp_path / "m")]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err


def test_module_entry_point() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest_tenantdb", "versions", str(EXAMPLE / "migrations")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and "backfill_display" in run.stdout
    bad = subprocess.run([sys.executable, "-m", "pytest_tenantdb", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_demo_without_workdir_cleans_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(EXAMPLE), "--count", "5", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    folder = out.split("fake tenants in ", 1)[1].split(":", 1)[0].replace("\n", "")
    assert "tenantdb-demo-" in folder and not Path(folder).exists()
