"""The tenantdb command."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
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
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert "built 40 fake tenants" in out and "copied 3 real tenant snapshots" in out
    assert "step 0008_rebuild_notes (" in out and "-- 1 tenant: initech" in out
    assert "restored byte-identical" in out
    assert captured.err == ""  # no progress off a terminal
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


# --- faults: every bad input ends in a message and a documented exit code, never a traceback ---

TENANTDB = Path(sys.executable).parent / "tenantdb"  # the console script of this environment


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``main(argv)`` as the console script would; no outcome may show a traceback."""
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, " ".join(captured.err.split())  # rich wraps long lines


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example's migrations, with no pyproject.toml yet."""
    shutil.copytree(EXAMPLE / "migrations", tmp_path / "migrations")
    return tmp_path


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("tool = 5\n", "tool = 5 must be a table"),
        ("[tool]\ntenantdb = 5\n", "[tool.tenantdb] must be a table, got 5"),
        ("[[tool.tenantdb]]\nsince = 1\n", "[[tool.tenantdb]] is an array of tables; write [tool.tenantdb]"),
    ],
)
def test_pyproject_tool_tables_of_the_wrong_kind(
    project: Path, toml: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(toml)
    code, _, err = _cli(["check", str(project)], capsys)
    assert code == 2 and expected in err and "pyproject.toml" in err


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('since = "abc"', "[tool.tenantdb] since = \"abc\": cannot read version 'abc'"),
        ("since = 1.5", "[tool.tenantdb] since = 1.5 is a float; expected a version"),
        ("since = -1", "[tool.tenantdb] since = -1 is a negative number; expected a version"),
        ("queries = 5", "[tool.tenantdb] queries = 5 is an integer; expected a string"),
        ('python = "app"', '[tool.tenantdb] python = "app" is a string; expected a list of strings'),
        ("ignore = [1]", "[tool.tenantdb] ignore = [1] has an integer item; expected a list of strings"),
        ("window = true", "[tool.tenantdb] window = true is a boolean; expected an integer"),
        ("severity = 3", "[tool.tenantdb] severity = 3 is an integer; expected a table"),
        ("[tool.tenantdb.migrations]", "[tool.tenantdb] migrations = {} is a table; expected a string"),
    ],
)
def test_config_values_of_the_wrong_type(
    project: Path, line: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(f"[tool.tenantdb]\n{line}\n")
    code, _, err = _cli(["check", str(project)], capsys)
    assert code == 2 and expected in err, err


def test_since_flag_names_itself(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["check", str(project), "--since", "abc"], capsys)
    assert code == 2 and "--since abc: cannot read version 'abc'" in err


def test_unknown_config_key_suggests_the_right_one(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "pyproject.toml").write_text('[tool.tenantdb]\nsinse = 3\nmigratons = "m"\n')
    code, _, err = _cli(["check", str(project)], capsys)
    assert code == 2
    assert "unknown key 'migratons' (did you mean 'migrations'?)" in err
    assert "unknown key 'sinse' (did you mean 'since'?)" in err


@pytest.mark.parametrize("target", ["missing/baseline.json", "."])
def test_write_baseline_where_it_cannot_go(
    project: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["check", str(project), "--write-baseline", str(project / target)], capsys)
    assert code == 2 and "--write-baseline" in err and str(project / target) in err


def test_demo_twice_into_the_same_workdir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["demo", str(EXAMPLE), "--count", "3", "--workers", "1", "--workdir", str(tmp_path / "w")]
    assert _cli(argv, capsys)[0] == 0
    code, _, err = _cli(argv, capsys)
    assert code == 2 and "--workdir" in err and "not empty" in err
    (tmp_path / "file").write_text("x")
    code, _, err = _cli([*argv[:-1], str(tmp_path / "file")], capsys)
    assert code == 2 and "not a folder" in err


def test_project_whose_cache_cannot_be_written_is_still_checked(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / ".pytest_cache").write_text("not a folder")
    code, out, err = _cli(["check", str(project)], capsys)
    assert code == 1 and "TDB102" in out
    assert "cannot write the cache" in err and "temporary cache" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_project_is_still_checked(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for path in [project, *project.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        code, out, err = _cli(["check", str(project)], capsys)
    finally:
        for path in [project, *project.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert code == 1 and "TDB102" in out and "temporary cache" in err


def test_broken_pipe_exits_quietly_with_141() -> None:
    """``tenantdb check | head``: the reader is gone before the first write."""
    read, write = os.pipe()
    os.close(read)
    try:
        run = subprocess.run(
            [str(TENANTDB), "check", str(EXAMPLE)], stdout=write, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write)
    assert run.returncode == 141 and run.stderr == ""


def test_keyboard_interrupt_exits_130_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr("pytest_tenantdb.cli._versions", interrupted)
    code, _, err = _cli(["versions", str(EXAMPLE / "migrations")], capsys)
    assert code == 130 and err == "tenantdb: interrupted"


def _crash(*args: object) -> int:
    raise RuntimeError("a bug in the tool")


def test_internal_error_exits_70_and_saves_the_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("pytest_tenantdb.cli._versions", _crash)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    code, _, err = _cli(["versions", str(EXAMPLE / "migrations")], capsys)
    assert code == 70
    assert "internal error (RuntimeError: a bug in the tool)" in err and "please report it" in err
    (report,) = tmp_path.glob("tenantdb-crash-*.txt")
    assert str(report) in err
    assert "Traceback" in report.read_text() and "a bug in the tool" in report.read_text()


@pytest.mark.parametrize("argv", [["--debug", "versions"], ["versions", "--debug"]])
def test_debug_shows_the_traceback(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("pytest_tenantdb.cli._versions", _crash)
    assert main([*argv, str(EXAMPLE / "migrations")]) == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: a bug in the tool" in err


def test_usage_errors_return_2_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(["nope"], capsys)
    assert code == 2 and "invalid choice" in err
    assert _cli(["--help"], capsys)[0] == 0
    code, _, err = _cli(["demo", str(EXAMPLE), "--count", "0"], capsys)
    assert code == 2 and "--count" in err
    code, _, err = _cli(["demo", str(EXAMPLE), "--workers", "-1"], capsys)
    assert code == 2 and "--workers" in err


def test_dangling_symlinked_step_is_an_error(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = project / "migrations" / "0012_gone.sql"
    link.symlink_to(tmp_path / "elsewhere" / "0012_gone.sql")
    for argv in (["check", str(project)], ["versions", str(project / "migrations")]):
        code, _, err = _cli(argv, capsys)
        assert code == 2 and str(link) in err and str(tmp_path / "elsewhere" / "0012_gone.sql") in err


def test_no_steps_is_an_error_not_zero_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "migrations").mkdir()
    code, out, err = _cli(["check", str(tmp_path)], capsys)
    assert code == 2 and "0 findings" not in out
    assert f"no migration steps found in {tmp_path / 'migrations'}" in err and "[tool.tenantdb]" in err
    shutil.copytree(EXAMPLE / "migrations", tmp_path / "migrations" / "sql")
    code, _, err = _cli(["check", str(tmp_path)], capsys)
    assert code == 2 and "its sub-folder sql holds step files" in err
    code, _, err = _cli(["versions", str(tmp_path / "migrations")], capsys)
    assert code == 2 and "no migration steps found" in err


def test_demo_of_a_short_history(
    write_migrations, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """The demo mix asks for head-5; a two-step history puts those tenants at the oldest step."""
    write_migrations({"0001_a.sql": "CREATE TABLE a (x);", "0002_b.sql": "ALTER TABLE a ADD COLUMN y;"})
    code, out, _ = _cli(["demo", str(tmp_path), "--count", "20", "--workers", "1"], capsys)
    assert code == 0 and "built 20 fake tenants" in out and "migrated" in out


@pytest.mark.parametrize("where", ["import", "up"])
def test_python_step_that_calls_exit(
    write_migrations, tmp_path: Path, where: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """A step's exit(3) is the step's failure, never the command's exit code."""
    body = "raise SystemExit(3)\n" if where == "import" else "def up(conn):\n    raise SystemExit(3)\n"
    write_migrations({"0001_a.sql": "CREATE TABLE a (x);", "0002_b.py": body})
    code, out, err = _cli(["check", str(tmp_path)], capsys)
    assert code in (1, 2) and "0002_b.py" in out + err and "SystemExit" in out + err


def test_a_stray_exit_is_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def exits(*args: object) -> int:
        raise SystemExit(5)

    monkeypatch.setattr("pytest_tenantdb.cli._versions", exits)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    code, _, err = _cli(["versions", str(EXAMPLE / "migrations")], capsys)
    assert code == 70 and "internal error (SystemExit: 5)" in err


# --- output: version, bare help, version syntax, tables and lines that are never cut ----------


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = _cli(["--version"], capsys)
    assert code == 0 and out == f"tenantdb {version('pytest-tenantdb')}\n"
    run = subprocess.run([str(TENANTDB), "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout == out and run.stderr == ""


def test_bare_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli([], capsys)
    assert code == 0 and err == ""
    assert "usage: tenantdb" in out and all(name in out for name in ("check", "explain", "versions", "demo"))
    run = subprocess.run([str(TENANTDB)], capture_output=True, text=True)
    assert run.returncode == 0 and "lint migrations and old queries" in run.stdout and run.stderr == ""
    code, _, err = _cli(["check", "--bogus"], capsys)
    assert code == 2 and "unrecognized arguments: --bogus" in err


@pytest.mark.parametrize(
    "since", ["head", "head-1", "HEAD-1", "head - 1", "10", "0010_users_name_nullable", "users_name_nullable"]
)
def test_since_takes_every_form_of_a_version(
    project: Path, since: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(["check", str(project), "--since", since], capsys)
    expected = (0, "0 findings") if since == "head" else (1, "TDB102")
    assert (code, err) == (expected[0], "") and expected[1] in out


def test_a_step_named_like_head_is_a_version_too(
    write_migrations, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    write_migrations(
        {
            "0001_a.sql": "CREATE TABLE a (x, y);",
            "0002_headers.sql": "CREATE TABLE h (x);",
            "0003_drop.sql": "ALTER TABLE a DROP COLUMN y;",
        }
    )
    for since, expected in (("headers", 1), ("head-1", 1), ("head", 0)):
        assert _cli(["check", str(tmp_path), "--since", since], capsys)[0] == expected, since
    (tmp_path / "pyproject.toml").write_text('[tool.tenantdb]\nsince = "headers"\n')
    assert _cli(["check", str(tmp_path)], capsys)[0] == 1


@pytest.mark.parametrize("since", ["head~1", "headx", "head-", "-1", "nope"])
def test_a_wrong_version_names_what_is_accepted(
    project: Path, since: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _cli(["check", str(project), "--since", since], capsys)
    assert code == 2 and f"--since {since}: cannot read version {since!r}" in err
    assert (
        "a step's number (3), 'head', 'head-N' (N steps before head), 'oldest', 'empty' or a step's name"
        in err
    )
    (project / "pyproject.toml").write_text(f"[tool.tenantdb]\nsince = {json.dumps(since)}\n")
    code, _, err = _cli(["check", str(project)], capsys)
    assert code == 2 and "'head', 'head-N'" in err and "[tool.tenantdb] since" in err


LONG = "create_the_accounts_table_with_a_rather_long_name_that_says_it_all"


def test_versions_never_cuts_a_name_off_a_terminal(
    write_migrations, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Piped (and with $COLUMNS describing a narrow terminal that is not there): one row per
    line, every name whole."""
    path = write_migrations(
        {f"0001_{LONG}.sql": "CREATE TABLE a (x);", f"0002_{LONG}_too.py": "def up(c): pass\n"}
    )
    monkeypatch.setenv("COLUMNS", "40")
    code, out, _ = _cli(["versions", str(path)], capsys)
    assert code == 0 and "…" not in out
    lines = out.splitlines()
    assert any(LONG in line and "SqlStep" in line for line in lines)
    assert any(f"{LONG}_too" in line and "PythonStep" in line for line in lines)
    assert any(str(path) in line and "head 2" in line for line in lines)


def _on_a_terminal(argv: list[str], columns: int) -> str:
    """What the console script prints on a pseudo-terminal ``columns`` wide."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "TERM")}
    run = subprocess.run(
        [str(TENANTDB), *argv],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**environment, "COLUMNS": str(columns), "TERM": "xterm"},
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the follower is closed: all was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert run.returncode == 0
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())  # styles, not text


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_versions_folds_names_on_a_narrow_terminal(write_migrations) -> None:  # type: ignore[no-untyped-def]
    path = write_migrations({f"0001_{LONG}.sql": "CREATE TABLE a (x);"})
    out = _on_a_terminal(["versions", str(path)], 40)
    assert "…" not in out and max(len(line) for line in out.splitlines()) <= 40
    cells = [line.split("│")[2].strip() for line in out.splitlines() if line.count("│") > 2]
    assert "".join(cells) == LONG  # folded over several rows, every character kept


def test_output_lines_are_not_wrapped_off_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CI log or a file gets each message on one line, however long (rich alone wraps at 80)."""
    workdir = tmp_path / ("a-long-folder-name-" * 5) / "fleet"
    code, out, _ = _cli(
        ["demo", str(EXAMPLE), "--count", "5", "--workers", "1", "--workdir", str(workdir)], capsys
    )
    assert code == 0
    assert any(
        line.startswith(f"built 5 fake tenants in {workdir / 'tenants'}: versions {{")
        for line in out.splitlines()
    )
    assert any(
        line.startswith("step 0008_rebuild_notes (") and line.endswith("-- 1 tenant: initech")
        for line in out.splitlines()
    )
    monkeypatch.setenv("COLUMNS", "40")
    assert main(["check", str(EXAMPLE), "--since", "x" * 100]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: ConfigError: --since xxx") and line.endswith(
        "or a step's name (e.g. '0011_contract_users_name')"
    )


def test_findings_keep_identifiers_as_written(
    write_migrations, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """Names are compared without case, as SQLite does, but shown as the migration spells them."""
    write_migrations(
        {
            "0001_init.sql": (
                "CREATE TABLE UserAccounts (Id INTEGER PRIMARY KEY, createdAt TEXT, displayName TEXT, Email TEXT);\n"
                "CREATE TABLE Items (ItemId INTEGER PRIMARY KEY, Qty INTEGER CHECK (Qty >= 0), Label TEXT);\n"
                "CREATE INDEX ix_Items_Label ON Items (Label DESC) WHERE Qty > 0;\n"
                "CREATE INDEX ix_Items_Lower ON Items (lower(Label));\n"
            ),
            "0002_change.sql": (
                "ALTER TABLE useraccounts RENAME COLUMN CREATEDAT TO created_at;\n"
                "ALTER TABLE UserAccounts DROP COLUMN displayName;\n"
                "CREATE UNIQUE INDEX ux_UserAccounts_Email ON UserAccounts (Email);\n"
                "CREATE TABLE Items_new (ItemId INTEGER PRIMARY KEY, Qty INTEGER, Label TEXT);\n"
                "INSERT INTO Items_new SELECT ItemId, Qty, Label FROM Items;\n"
                "DROP TABLE Items;\n"
                "ALTER TABLE Items_new RENAME TO Items;\n"
            ),
            "0003_check.sql": (
                "CREATE TABLE Items_new (ItemId INTEGER PRIMARY KEY, Qty INTEGER CHECK (Qty < 100), Label TEXT);\n"
                "INSERT INTO Items_new SELECT ItemId, Qty, Label FROM Items;\n"
                "DROP TABLE Items;\n"
                "ALTER TABLE Items_new RENAME TO Items;\n"
            ),
        }
    )
    code, out, _ = _cli(["check", str(tmp_path)], capsys)
    assert code == 1
    for message in (
        "column UserAccounts.createdAt is renamed to created_at in place",
        "column UserAccounts.displayName is dropped",
        "unique index ux_UserAccounts_Email added to existing table UserAccounts: UNIQUE ON UserAccounts (Email)",
        "loses index ix_Items_Label (ON Items (Label DESC) WHERE Qty > 0)",
        "loses index ix_Items_Lower (ON Items (LOWER(Label)))",
        "the rebuild of Items loses CHECK (Qty >= 0)",
        "CHECK (Qty < 100) added to existing table Items",
    ):
        assert message in out, message


# --- the project of `tenantdb check` with no path: found from any subfolder ------------------


def _nested(project: Path) -> Path:
    folder = project / "app" / "sub"
    folder.mkdir(parents=True)
    return folder


def test_check_finds_the_project_from_a_subfolder(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text('[tool.tenantdb]\nmigrations = "migrations"\n')
    sub = _nested(project)
    (sub.parent / "pyproject.toml").write_text('[project]\nname = "app"\n')  # nearer, but not ours
    monkeypatch.chdir(sub)
    code, out, err = _cli(["check", "--format", "json"], capsys)
    assert code == 1 and {f["code"] for f in json.loads(out)} == {"TDB102"}  # stdout is the report only
    assert err == f"note: checking the project in {project} (its pyproject.toml has [tool.tenantdb])"
    monkeypatch.chdir(project)
    code, _, err = _cli(["check"], capsys)
    assert code == 1 and err == ""  # the working folder is the project: nothing to say


def test_check_falls_back_to_the_nearest_pyproject(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "app"\n')
    monkeypatch.chdir(_nested(project))
    code, out, err = _cli(["check"], capsys)
    assert code == 1 and "TDB102" in out
    assert f"checking the project in {project} (the nearest pyproject.toml" in err


def test_an_explicit_path_is_used_as_given(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text("[tool.tenantdb]\n")
    monkeypatch.chdir(_nested(project))
    code, _, err = _cli(["check", "."], capsys)
    assert code == 2 and "cannot load migrations from 'migrations'" in err and "note:" not in err


def test_postgres_findings_keep_identifiers_as_written(
    write_migrations, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    """The DDL model of postgres folds names to compare them, not to show them; a statement may
    spell a name in another case than its CREATE (``ALTER TABLE useraccounts``)."""
    write_migrations(
        {
            "0001_init.sql": (
                "CREATE TABLE UserAccounts (Id INTEGER PRIMARY KEY, createdAt TEXT, displayName TEXT, OrgId INT);\n"
                "CREATE TABLE Orgs (OrgId INTEGER PRIMARY KEY, OrgName TEXT);\n"
            ),
            "0002_change.sql": (
                "ALTER TABLE useraccounts RENAME COLUMN CREATEDAT TO created_at;\n"
                "ALTER TABLE USERACCOUNTS DROP COLUMN displayname;\n"
                "ALTER TABLE Orgs ADD COLUMN Id INT;\n"
            ),
        }
    )
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "0001.sql").write_text(
        "SELECT displayName FROM UserAccounts;\n"
        "SELECT OrgName FROM UserAccounts JOIN Orgs ON Orgs.OrgId = UserAccounts.OrgId WHERE Id = $1;\n"
        "SELECT Nope FROM UserAccounts;\n"
        "SELECT * FROM Missing;\n"
    )
    (tmp_path / "pyproject.toml").write_text('[tool.tenantdb]\ndialect = "postgres"\nqueries = "queries"\n')
    code, out, _ = _cli(["check", str(tmp_path)], capsys)
    assert code == 1
    for message in (
        "column UserAccounts.createdAt is renamed to created_at in place",
        "column UserAccounts.displayName is dropped; old code still uses it",
        "no such column: displayName",
        "ambiguous column name: Id",
        "no such column: Nope",
        "no such table: Missing",
    ):
        assert message in out, message
