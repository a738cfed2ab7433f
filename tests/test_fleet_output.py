"""What a fleet migration tells a person: failures grouped by step and error, a short repr for
``assert report.ok, report``, a Python step's own line and real error, progress with counts."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tenantdb.checks.builtin import format_row
from pytest_tenantdb.cli import main
from pytest_tenantdb.errors import StepFailure
from pytest_tenantdb.fleet.report import FleetReport, TenantOutcome
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.progress import RichProgress, counting, for_pytest, for_terminal
from tests.conftest import make_builder

pytest_plugins = ["pytester"]
Writer = Callable[..., Path]

#: A step that fails on every tenant holding more than two runs: ``kind`` has two values.
KINDS = {
    "0001_runs.sql": "CREATE TABLE runs (id INTEGER PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('a', 'b')), "
    "note TEXT);\n",
    "0002_extra.sql": "ALTER TABLE runs ADD COLUMN extra TEXT;\n",
    "0003_unique_kind.sql": "CREATE UNIQUE INDEX runs_kind ON runs(kind);\n",
}


def _failed(tenant: str, step: str | None, error: str, path: str = "") -> TenantOutcome:
    return TenantOutcome(tenant, path or f"/fleet/{tenant}.sqlite3", "failed", 1, 1, step=step, error=error)


# -- failures grouped -------------------------------------------------------------------------


def test_one_failing_step_on_many_tenants_is_reported_once(tmp_path: Path, write_migrations: Writer) -> None:
    migrations = MigrationSet.from_path(write_migrations(KINDS))
    fleet = make_builder(tmp_path, migrations)(count=20, versions={1: 16, 3: 4}, sizes="small")
    report = fleet.migrate()
    assert len(report.failed) == 16
    text = str(report)
    assert text.count("UNIQUE constraint failed: runs.kind") == 1
    first = [o.tenant for o in report.failed[:3]]
    assert f"-- 16 tenants: {', '.join(first)}, ... (+13)" in text
    assert text.startswith("20 tenants -> version 3: 0 migrated, 4 already current, 16 failed")
    assert "step 0003_unique_kind (" in text and "0003_unique_kind.sql:1)" in text
    assert text.count("CREATE UNIQUE INDEX runs_kind ON runs(kind);") == 1
    assert len(text.splitlines()) == 3
    (group,) = report.failure_groups()
    assert group.step == "0003_unique_kind" and group.tenants == [o.tenant for o in report.failed]


def test_errors_naming_the_tenant_collapse_and_kinds_are_counted() -> None:
    outcomes = [
        *(_failed(f"t{i:03d}", None, f"/fleet/t{i:03d}.sqlite3: file is not a database") for i in range(5)),
        _failed("t100", "0002_b", "interrupted: put back at version 1 (nothing lost)"),
        _failed("t101", "0002_b", "interrupted: put back at version 2 (nothing lost)"),
        *(_failed(f"u{i}", f"000{i + 3}_x", f"error {chr(97 + i)}") for i in range(6)),
    ]
    report = FleetReport(9, tuple(outcomes))
    groups = report.failure_groups()
    assert [len(g.outcomes) for g in groups] == [5, 2, 1, 1, 1, 1, 1, 1]
    assert groups[0].headline() == (
        "before any step: <tenant file>: file is not a database -- 5 tenants: t000, t001, t002, ... (+2)"
    )
    assert groups[1].tenants == ["t100", "t101"]
    text = report.summary(failures=3)
    assert text.endswith("... and 5 more kinds of failure (5 tenants)")
    assert "/fleet/t000.sqlite3" not in text


def test_the_cli_demo_prints_each_kind_of_failure_once(
    tmp_path: Path, write_migrations: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    write_migrations(KINDS)
    assert (
        main(["demo", str(tmp_path), "--count", "60", "--workers", "1", "--workdir", str(tmp_path / "w")])
        == 0
    )
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert out.count("UNIQUE constraint failed: runs.kind") == 1
    assert re.search(r"-- \d+ tenants: tenant-\d+, tenant-\d+, tenant-\d+, \.\.\. \(\+\d+\)", out)
    assert captured.err == ""  # stderr is not a terminal here: no progress at all


# -- assert report.ok, report ------------------------------------------------------------------


def test_assert_report_ok_shows_the_grouped_summary(
    pytester: pytest.Pytester, write_migrations: Writer
) -> None:
    folder = write_migrations(KINDS)
    pytester.makeini(f"[pytest]\ntenantdb_migrations = {folder}\n")
    pytester.makepyfile(
        """
        def test_release(tenant_fleet):
            fleet = tenant_fleet(count=30, versions={1: 30}, sizes="small", seed=3)
            report = fleet.migrate()
            assert report.ok, report
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E*AssertionError: <FleetReport 30 tenants -> version 3: 0 migrated, 0 current, 30 failed",
            "E*step 0003_unique_kind: UNIQUE constraint failed: runs.kind "
            "-- 30 tenants: tenant-0001, tenant-0002, tenant-0003, ... (+27)>",
        ]
    )
    failure = result.stdout.str().split("___ test_release ___")[1].split("tenantdb fleet migrations")[0]
    assert "TenantOutcome(" not in failure and "..." not in failure.replace("... (+27)", "")
    assert len(failure.splitlines()) < 25


def test_the_repr_stays_under_pytests_cut() -> None:
    long = "x" * 400
    outcomes = [_failed(f"t{i}", f"00{i:02d}_step", f"{long} {i}") for i in range(30)]
    text = repr(FleetReport(30, tuple(outcomes)))
    assert len(text) <= 240
    assert text.startswith(
        "<FleetReport 30 tenants -> version 30: 0 migrated, 0 current, 30 failed\nstep 0000_step"
    )
    assert text.endswith("(+29 more kinds of failure; print(report) for all)>")


# -- a Python step's own line and its real error ------------------------------------------------


def _callable_steps(tmp_path: Path, body: str) -> MigrationSet:
    """module:STEPS with a first step creating ``runs`` and a second running ``body``."""
    name = f"steps_{abs(hash((str(tmp_path), body)))}"
    (tmp_path / f"{name}.py").write_text(
        "def create(conn):\n"
        "    conn.execute('CREATE TABLE runs (id INTEGER PRIMARY KEY, slug TEXT UNIQUE, n INTEGER)')\n"
        "    conn.execute(\"INSERT INTO runs (slug, n) VALUES ('a', 1), ('b', NULL)\")\n\n\n"
        + textwrap.dedent(body)
        + "\n\nSTEPS = [create, backfill]\n"
    )
    return MigrationSet.from_path(f"{name}:STEPS", root=tmp_path)


def test_a_python_error_in_a_step_names_its_line_not_the_last_sql(tmp_path: Path) -> None:
    migrations = _callable_steps(
        tmp_path,
        """
        def backfill(conn):
            rows = conn.execute("SELECT n FROM runs ORDER BY id").fetchall()
            total = sum(row[0] for row in rows)
            conn.execute("UPDATE runs SET n = ?", (total,))
        """,
    )
    fleet = make_builder(tmp_path, migrations)(count=3, versions={1: 3}, sizes="empty")
    report = fleet.migrate()
    failure = report.failed[0]
    assert failure.error == "TypeError: unsupported operand type(s) for +: 'int' and 'NoneType'"
    assert failure.location is not None and failure.location.endswith(".py:9")
    assert failure.code == "total = sum(row[0] for row in rows)"
    assert failure.statement is None  # the SELECT before it is not what failed
    text = str(report)
    assert "> total = sum(row[0] for row in rows)" in text and "SELECT n FROM runs" not in text


def test_a_database_error_in_a_python_step_names_its_line_and_the_sql(tmp_path: Path) -> None:
    migrations = _callable_steps(
        tmp_path,
        """
        def backfill(conn):
            conn.execute("UPDATE runs SET n = 0 WHERE n IS NULL")
            conn.execute("INSERT INTO runs (slug) VALUES ('a')")
        """,
    )
    fleet = make_builder(tmp_path, migrations)(count=2, versions={1: 2}, sizes="empty")
    failure = fleet.migrate().failed[0]
    assert failure.error == "IntegrityError: UNIQUE constraint failed: runs.slug"
    assert failure.code == """conn.execute("INSERT INTO runs (slug) VALUES ('a')")"""
    assert failure.statement == "INSERT INTO runs (slug) VALUES ('a')"
    assert (
        "\n    > conn.execute(" in failure.describe() and "\n    SQL: INSERT INTO runs" in failure.describe()
    )


DJANGO_APP = {
    "shop/__init__.py": "",
    "shop/migrations/__init__.py": "",
    "shop/migrations/0001_initial.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            operations = [
                migrations.CreateModel(
                    "Run",
                    [("id", models.AutoField(primary_key=True)), ("slug", models.TextField(unique=True))],
                )
            ]
        """,
    "shop/migrations/0002_fill.py": """
        from django.db import IntegrityError, migrations


        def fill(apps, schema_editor):
            Run = apps.get_model("shop", "Run")
            Run.objects.create(slug="a")
            try:
                Run.objects.create(slug="a")
            except IntegrityError:
                Run.objects.filter(slug="a").update(slug="b")


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.RunPython(fill)]
        """,
    "shop_settings.py": """
        SECRET_KEY = "x"
        INSTALLED_APPS = ["shop"]
        DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
        """,
}


def test_a_django_step_reports_the_integrity_error_not_the_transaction_error(tmp_path: Path) -> None:
    """Django refuses the query after an IntegrityError caught inside its atomic block
    (TransactionManagementError); the report gives the IntegrityError, at its own line."""
    for name, text in DJANGO_APP.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(textwrap.dedent(text))
    code = textwrap.dedent(
        """
        import sqlite3
        from pytest_tenantdb.errors import StepFailure
        from pytest_tenantdb.migrations import MigrationSet
        from pytest_tenantdb.migrations.runner import run_plan
        from pytest_tenantdb.versioning import version_store

        migrations = MigrationSet.from_path("django:shop")
        conn = sqlite3.connect(":memory:", isolation_level=None)
        try:
            run_plan(conn, migrations, migrations.plan(0, migrations.head), version_store("auto", migrations))
        except StepFailure as exc:
            print(exc.error, exc.location, exc.code, exc.statement, sep="\\n")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "shop_settings", "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    error, location, line, statement = result.stdout.splitlines()
    assert error == (
        "IntegrityError: UNIQUE constraint failed: shop_run.slug "
        "(surfaced as TransactionManagementError: the step went on after it)"
    ), result.stderr
    assert location.endswith("0002_fill.py:9")
    assert line == 'Run.objects.create(slug="a")'
    assert statement.startswith('INSERT INTO "shop_run" ("slug") VALUES')


def test_step_failure_message_shows_the_python_line() -> None:
    failure = StepFailure("0002_b", None, "steps.py:8", "TypeError: boom", code="total = sum(rows)")
    assert str(failure) == "step 0002_b (up) failed at steps.py:8: TypeError: boom\n  > total = sum(rows)"


def test_offending_rows_name_their_columns() -> None:
    row = (1, None, "draft", b"\x00" * 50)
    shown = format_row(["id", "author_id", "status", "blob"], row)
    assert shown.startswith("id=1, author_id=NULL, status='draft', blob=b'\\x00\\x00")
    assert shown.endswith("...") and len(shown.split("blob=")[1]) == 60


# -- progress -----------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int, str]] = []
        self.closed = 0

    def __call__(self, task: str, done: int, total: int, label: str = "") -> None:
        self.calls.append((task, done, total, label))

    def close(self) -> None:
        self.closed += 1


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_is_told_of_every_tenant_built_and_migrated(
    tmp_path: Path, write_migrations: Writer, workers: int
) -> None:
    migrations = MigrationSet.from_path(write_migrations(KINDS))
    progress = Recorder()
    fleet = make_builder(tmp_path, migrations, progress=progress, workers=workers)(
        count=12, versions={2: 12}, sizes="empty"
    )
    ids = [t.id for t in fleet]
    assert progress.calls == [
        ("building", 0, 12, ""),
        *(("building", i + 1, 12, t) for i, t in enumerate(ids)),
    ]
    progress.calls.clear()
    assert fleet.migrate().ok
    assert progress.calls == [
        ("migrating", 0, 12, ""),
        *(("migrating", i + 1, 12, t) for i, t in enumerate(ids)),
    ]
    assert progress.closed == 0


def test_a_task_stopped_by_an_exception_closes_the_progress() -> None:
    progress = Recorder()
    with pytest.raises(KeyboardInterrupt), counting(progress, "migrating", 3) as tick:
        tick("a")
        raise KeyboardInterrupt
    assert progress.calls == [("migrating", 0, 3, ""), ("migrating", 1, 3, "a")] and progress.closed == 1


def _drawn(delay: float, times: list[float], total: int = 4) -> str:
    """What a RichProgress draws on a terminal for a task whose ticks come at ``times``."""
    out = io.StringIO()
    clock = iter(times)

    def console() -> object:
        from rich.console import Console

        return Console(file=out, force_terminal=True, width=100)

    progress = RichProgress(console, delay=delay, clock=lambda: next(clock))  # type: ignore[arg-type]
    for done in range(total + 1):
        progress("migrating", done, total, f"t{done}")
    return out.getvalue()


def test_rich_progress_draws_counts_only_for_a_long_task() -> None:
    assert _drawn(2.0, [0.0, 0.5, 1.0, 1.5, 1.9]) == ""  # done within the delay: nothing, no flicker
    drawn = _drawn(2.0, [0.0, 0.5, 2.5, 3.0, 4.0])
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", drawn)
    assert "migrating tenants" in plain and "2/4" in plain and "4/4" in plain and "eta" in plain
    assert "0/4" not in plain and "1/4" not in plain  # not drawn before 2 s


def test_no_progress_off_a_terminal(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    assert for_terminal(io.StringIO()) is None
    assert for_pytest(pytester.parseconfigure()) is None  # pytester's output is no terminal

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert for_terminal(Tty()) is not None
    monkeypatch.setenv("TENANTDB_PROGRESS", "0")
    assert for_terminal(Tty()) is None


def test_progress_in_pytest_is_drawn_past_the_capture(
    pytester: pytest.Pytester, write_migrations: Writer
) -> None:
    """On a terminal (faked: output to a pipe here) a long build draws its bar between the test's
    captured output, which keeps only what the test printed."""
    folder = write_migrations(KINDS)
    pytester.makeini(f"[pytest]\ntenantdb_migrations = {folder}\n")
    pytester.makeconftest(
        """
        import importlib
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            reporter.isatty = type(reporter.isatty)(True)  # pytest's callable bool
            importlib.import_module("pytest_tenantdb.progress").PYTEST_DELAY = 0.0  # no waiting
        """
    )
    pytester.makepyfile(
        """
        def test_build(tenant_fleet):
            print("the test's own output")
            tenant_fleet(count=7, versions={1: 7}, sizes="empty")
            assert False
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    out = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", result.stdout.str())
    assert re.search(r"building tenants .* 7/7", out)
    captured = out.split("Captured stdout call")[1]
    assert "the test's own output" in captured and "building tenants" not in captured
