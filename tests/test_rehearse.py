"""``tenantdb rehearse``: the release tried on copies; originals only read; failures grouped."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main
from pytest_tenantdb.fleet.rehearse import percentile, rehearse_directory
from pytest_tenantdb.migrations import MigrationSet
from tests.conftest import make_builder
from tests.realfolder import EXPECTED, held_lock, state

UNIQUE_COLOR = """-- migrate:up
CREATE UNIQUE INDEX tags_unique_color ON tags (color);

-- migrate:down
DROP INDEX tags_unique_color;
"""


def test_rehearse_reports_every_file_and_never_writes_the_originals(
    real: Path, tmp_path: Path, example_migrations: MigrationSet
) -> None:
    before = state(real)
    templates = make_builder(tmp_path / "b", example_migrations).templates
    result = rehearse_directory(real, templates, tmp_path / "work", workers=2)
    assert state(real) == before  # bytes, mtimes and side files of every original
    by_name = {Path(o.path).name: o for o in result.report.outcomes}
    assert set(by_name) == set(EXPECTED)
    assert {n for n, o in by_name.items() if o.status == "migrated"} == {
        "t-prev-1.db",
        "t-prev-2.db",
        "t-old-1.db",
    }
    assert all(by_name[n].end == 11 for n in ("t-prev-1.db", "t-old-1.db"))
    # at head: current; the six whose schema hash is the template's without a copy
    assert {n for n, o in by_name.items() if o.status == "current"} == {
        "t-head-1.db", "t-head-2.db", "t-head-3.db", "wal-shm.db", "wal-noshm.db", "wal-clean.db",
        "drift-a1.db", "drift-a2.db", "drift-b.db",
    }  # fmt: skip
    assert result.fast == 6
    assert len(list((tmp_path / "work" / "tenants").glob("*.sqlite3"))) == 6  # 3 to migrate + 3 drifted
    problems = {Path(p.path).name: p.status for p in result.problems}
    assert problems == {
        "future.db": "unknown_version",
        "hot.db": "hot_journal",
        "zero.db": "empty",
        "text.db": "not_sqlite",
        "corrupt.db": "corrupt",
        "link-out.db": "symlink",
        "link-in.db": "symlink",
    }
    assert not result.ok and len(result.report.failed) == 7
    assert all(g.step is None for g in result.report.failure_groups())
    text = result.summary()
    assert "7 tenant(s) would fail" in text and "(an estimate:" in text
    assert "empty: empty file (0 bytes)" in text and "out of the folder" in text
    timing = result.timings()
    assert timing["migrated_tenants"] == 3 and 0 < timing["median_seconds"] <= timing["p95_seconds"]
    guess = result.estimate()
    assert guess["tenants_to_migrate"] == 3 and guess["workers"] == 2
    assert guess["seconds"] == pytest.approx(guess["mean_seconds_per_tenant"] * 3 / 2)
    json.dumps(result.to_dict())


def test_failures_are_grouped_by_step_and_error(
    real: Path, example_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (example_project / "migrations" / "0012_unique_tag_color.sql").write_text(UNIQUE_COLOR)
    for name in ("t-head-1.db", "t-head-2.db", "t-prev-1.db"):  # two tags of one colour
        conn = sqlite3.connect(real / name)
        conn.execute("DELETE FROM note_tags")
        conn.execute("DELETE FROM tags")
        conn.execute("INSERT INTO tags (label, color) VALUES ('a', 'red'), ('b', 'red')")
        conn.commit()
        conn.close()
    before = state(real)
    assert main(["rehearse", str(real), "--project", str(example_project), "--json", "--workers", "1"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert state(real) == before
    assert data["target"] == 12 and data["current_without_copy"] == 0
    steps = {(g["step"], g["count"]): g for g in data["failure_groups"] if g["step"]}
    unique = steps[("0012_unique_tag_color", 3)]
    assert "UNIQUE constraint failed" in unique["error"]
    assert sorted(unique["tenants"]) == ["t-head-1", "t-head-2", "t-prev-1"]
    missing = steps[("0012_unique_tag_color", 2)]  # the two tenants whose tags.color was dropped
    assert "color" in missing["error"] and sorted(missing["tenants"]) == ["drift-a1", "drift-a2"]
    migrated = {t["tenant"] for t in data["tenants"] if t["status"] == "migrated"}
    assert migrated >= {"t-head-3", "t-prev-2", "t-old-1", "drift-b", "wal-shm", "wal-noshm"}
    assert data["timings"]["migrated_tenants"] == len(migrated) + 5


def test_a_current_fleet_is_rehearsed_without_a_copy(
    tmp_path: Path, example_migrations: MigrationSet
) -> None:
    builder = make_builder(tmp_path / "b", example_migrations)
    fleet = builder.build(20, {11: 1.0}, sizes="small")
    folder = fleet[0].path.parent
    result = rehearse_directory(folder, builder.templates, tmp_path / "work", "*.sqlite3")
    assert result.ok and result.fast == 20 and result.report.totals()["current"] == 20
    assert list((tmp_path / "work" / "tenants").iterdir()) == []
    assert result.estimate()["seconds"] == 0.0 and "no tenant would fail" in result.summary()
    down = rehearse_directory(folder, builder.templates, tmp_path / "work2", "*.sqlite3", target=10)
    assert down.fast == 0 and down.report.totals()["failed"] == 20  # --to 10: 0011 has no down section
    (group,) = down.report.failure_groups()
    assert group.step == "0011_contract_users_name" and len(group.outcomes) == 20
    assert "no down section" in group.error


def test_a_seeded_sample(tmp_path: Path, example_migrations: MigrationSet) -> None:
    builder = make_builder(tmp_path / "b", example_migrations)
    fleet = builder.build(30, {11: 0.5, 9: 0.5}, sizes="empty")
    folder = fleet[0].path.parent
    runs = [
        rehearse_directory(folder, builder.templates, tmp_path / f"w{n}", "*.sqlite3", sample=7, seed=seed)
        for n, seed in enumerate((4, 4, 5))
    ]
    names = [[o.tenant for o in r.report.outcomes] for r in runs]
    assert len(names[0]) == 7 and names[0] == names[1] and names[0] != names[2]
    assert runs[0].total == 30 and runs[0].sample == 7
    migrating = runs[0].report.totals()["migrated"]
    assert runs[0].estimate()["tenants_to_migrate"] == pytest.approx(migrating / 7 * 30)
    assert "a sample of 7 (seed 4)" in runs[0].summary()
    whole = rehearse_directory(folder, builder.templates, tmp_path / "all", "*.sqlite3", sample=100)
    assert whole.rehearsed == 30


def test_the_first_look_spread_over_workers_is_the_same(
    real: Path, tmp_path: Path, example_migrations: MigrationSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_tenantdb.fleet import rehearse
    from pytest_tenantdb.fleet.directory import list_tenant_files
    from pytest_tenantdb.fleet.scan import Scanner

    templates = make_builder(tmp_path / "b", example_migrations).templates
    paths = list_tenant_files(real).files
    serial = rehearse.scan_files(Scanner(templates), paths, workers=1)
    monkeypatch.setattr(rehearse, "PARALLEL_SCAN", 2)
    assert rehearse.scan_files(Scanner(templates), paths, workers=2) == serial
    before = state(real)
    spread = rehearse_directory(real, templates, tmp_path / "work", workers=2)
    assert state(real) == before and spread.fast == 6 and len(spread.report.failed) == 7


def test_a_locked_tenant_is_an_outcome(real: Path, tmp_path: Path, example_migrations: MigrationSet) -> None:
    templates = make_builder(tmp_path / "b", example_migrations).templates
    with held_lock(real / "t-prev-1.db"):
        result = rehearse_directory(real, templates, tmp_path / "work", timeout=0.05)
    problems = {p.tenant: p.status for p in result.problems}
    assert problems["t-prev-1"] == "locked"


def test_rehearse_cli_text_html_exit_codes(
    real: Path, example_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = state(real)
    html = tmp_path / "out" / "rehearsal.html"
    argv = ["rehearse", str(real), "--project", str(example_project), "--workers", "2"]
    assert main([*argv, "--html", str(html)]) == 1
    out = capsys.readouterr().out
    assert "3 migrated" in out and "would fail" in out and "estimate of the release" in out
    page = html.read_text()
    assert "tenantdb rehearse" in page and "estimate of the release" in page and "not_sqlite" in page
    from tests.test_html_report import chromium, headless

    dom = headless(chromium(), tmp_path / "profile", "--dump-dom", html.as_uri())  # as a browser shows it
    assert "estimate of the release" in dom and "not_sqlite" in dom and 'class="report-section"' in dom
    assert main([*argv, "--pattern", "t-*.db", "--workdir", str(tmp_path / "kept")]) == 0
    assert "no tenant would fail" in capsys.readouterr().out
    assert len(list((tmp_path / "kept" / "tenants").glob("*.sqlite3"))) == 3  # the copies are kept
    assert state(real) == before

    assert main([*argv, "--workdir", str(tmp_path / "kept")]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert main([*argv, "--to", "99"]) == 2
    assert main([*argv, "--sample", "0"]) == 2
    assert main([*argv, "--html", str(tmp_path)]) == 2
    assert main(["rehearse", str(tmp_path / "missing"), "--project", str(example_project)]) == 2
    assert main(["rehearse"]) == 2
    assert main([*argv, "--workdir", str(real / "inside")]) == 2  # copies never go among the originals
    assert state(real) == before
    capsys.readouterr()


def test_rehearse_through_the_console_script(real: Path, example_project: Path) -> None:
    script = Path(sys.executable).with_name("tenantdb")
    before = state(real)
    done = subprocess.run(
        [
            str(script),
            "rehearse",
            str(real),
            "--project",
            str(example_project),
            "--pattern",
            "t-*.db",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] and data["totals"] == {"migrated": 3, "current": 3, "failed": 0}
    assert "Traceback" not in done.stderr and state(real) == before


def test_percentile() -> None:
    assert percentile([], 0.95) == 0.0
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(100)], 0.95) == 95.0
