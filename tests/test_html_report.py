"""The HTML report (``--tenantdb-report FILE``, ``tenantdb demo --html FILE``): what it holds, that
everything in it is escaped, and how it looks in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from pytest_tenantdb.cli import main
from pytest_tenantdb.fleet.report import FleetReport, TenantOutcome
from pytest_tenantdb.htmlreport import Group, ReportData, Section, from_fleet_report, render_html, write_html
from tests.conftest import EXAMPLE

pytest_plugins = ["pytester"]

SCRIPT = '<script>document.title="pwned"</script>'

#: A small history whose third step fails on tenants holding a user whose email is SCRIPT: the
#: CHECK constraint's text, and so SQLite's error and the statement, carry the script tag.
MIGRATIONS = {
    "0001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL);\n",
    "0002_name.sql": "ALTER TABLE users ADD COLUMN name TEXT;\n",
    "0003_emails.sql": (
        f"CREATE TABLE emails (address TEXT CHECK (address <> '{SCRIPT}'));\n"
        "INSERT INTO emails SELECT email FROM users;\n"
    ),
    "0004_posts.sql": "CREATE TABLE posts (id INTEGER PRIMARY KEY, title TEXT NOT NULL);\n",
}

#: 20 tenants: 8 at version 1, 8 at 2, 4 at head (4); 5 of the first 16 hold SCRIPT and fail.
TEST_FILE = f"""
def test_release(tenant_fleet):
    fleet = tenant_fleet(count=20, versions={{1: 0.4, 2: 0.4, 4: 0.2}}, seed=3, sizes="small")
    assert fleet.created_versions() == {{1: 8, 2: 8, 4: 4}}
    poisoned = [t for t in fleet if t.version < 4][:5]
    for tenant in poisoned:
        with tenant.connect() as conn:
            conn.execute("INSERT INTO users (email) VALUES (?)", ({SCRIPT!r},))
    report = fleet.migrate()
    assert len(report.failed) == 5
"""


def fleet_project(pytester: pytest.Pytester) -> pytest.Pytester:
    folder = pytester.path / "migrations"
    folder.mkdir()
    for name, text in MIGRATIONS.items():
        (folder / name).write_text(text)
    pytester.makeini("[pytest]\ntenantdb_migrations = migrations\n")
    pytester.makepyfile(test_release=TEST_FILE)
    return pytester


def test_report_file_holds_the_runs_fleet_migrations(pytester: pytest.Pytester) -> None:
    project = fleet_project(pytester)
    result = project.runpytest("--tenantdb-report", "out/report.html")
    result.assert_outcomes(passed=1)
    page = project.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"tenantdb report: {page}"])
    text = page.read_text()
    assert "test_release.py::test_release" in text
    assert '<section class="report-section" id="s1" data-status="failed">' in text
    assert '<div class="hbar" data-label="1" data-count="8">' in text  # before: 8 at version 1
    assert '<div class="hbar" data-label="4" data-count="15">' in text  # after: 15 at head
    assert '<details class="group failure" data-count="5" open>' in text
    assert re.search(r"step 0003_emails \([^)]*/migrations/0003_emails.sql:2\)", text)
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in text
    assert "<script" not in text


def test_report_under_xdist_gathers_every_workers_migrations(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    project = fleet_project(pytester)
    project.makepyfile(
        test_other="""
        def test_small(tenant_fleet):
            assert tenant_fleet(count=3, versions={"oldest": 1.0}).migrate().ok

        def test_no_fleet():
            pass
        """
    )
    result = project.runpytest_subprocess("-n", "2", "--tenantdb-report", "report.html")
    result.assert_outcomes(passed=3)
    text = (project.path / "report.html").read_text()
    assert text.count('<section class="report-section"') == 2
    assert "test_other.py::test_small" in text and "test_release.py::test_release" in text
    assert "2 fleet migrations, 23 tenants, 5 failed" in text
    assert '<table class="overview">' in text


def test_report_of_a_run_without_fleets_says_so(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--tenantdb-report", "r.html")
    result.assert_outcomes(passed=1)
    assert "No fleet was migrated in this run" in (pytester.path / "r.html").read_text()


def test_report_that_cannot_be_written_is_said_not_raised(pytester: pytest.Pytester) -> None:
    (pytester.path / "taken").write_text("a file, not a folder")
    pytester.makepyfile("def test_x():\n    pass\n")
    result = pytester.runpytest("--tenantdb-report", "taken/r.html")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["tenantdb report: could not write *taken/r.html: *"])
    assert result.ret == 0


def outcome(tenant: str, status: str, start: int, **kwargs: object) -> TenantOutcome:
    end = kwargs.pop("end", 3 if status != "failed" else start)
    return TenantOutcome(tenant, f"/f/{tenant}.db", status, start, end, **kwargs)  # type: ignore[arg-type]


def test_untrusted_text_is_escaped_everywhere() -> None:
    evil = '<script>alert("x")</script>'
    report = FleetReport(
        3,
        (
            outcome(evil, "failed", 1, step=evil, location=evil, error=evil, statement=evil, code=evil),
            outcome("t2", "migrated", 1, seconds=0.5),
        ),
        seconds=1.0,
    )
    section = from_fleet_report(report, evil, source=evil)
    drift = Group.of(148, [evil, f"+ column {evil}"], [evil, "t9"])
    data = ReportData(evil, (section, Section(evil, "drift", drift=(drift,), notes=(evil,))), subtitle=evil)
    text = render_html(data)
    assert "<script" not in text
    assert text.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;") >= 12
    assert "148 tenants" in text and "... and 146 more" in text


def test_fleet_section_counts_versions_outcomes_and_timings() -> None:
    report = FleetReport(
        3,
        (
            outcome("a", "migrated", 1, seconds=0.002),
            outcome("b", "current", 3),
            outcome("c", "failed", 1, step="0002_x", error="boom", statement="SELECT 1", seconds=0.004),
            outcome("d", "failed", 2, step="0002_x", error="boom", seconds=2.5),
        ),
        seconds=3.0,
        workers=2,
    )
    section = from_fleet_report(report, "release")
    assert section.status == "failed"
    assert dict(section.totals) == {"migrated": 1, "current": 1, "failed": 2}
    before, after = section.histograms
    assert [(b.label, b.count) for b in before.bars] == [("1", 2), ("2", 1), ("3", 1)]
    assert [(b.label, b.count) for b in after.bars] == [("1", 1), ("2", 1), ("3", 2)]
    assert section.breakdowns[0].rows == (("1", (1, 0, 1)), ("2", (0, 0, 1)), ("3", (0, 1, 0)))
    (group,) = section.failures
    assert (group.count, group.title, group.tenants, group.lines) == (2, "boom", ("c", "d"), ("SELECT 1",))
    timings = dict(section.timings)
    assert timings["whole migration"] == "3.00 s (2 workers)"
    assert timings["slowest tenants"].startswith("d (2.50 s), c (4.0 ms)")


def test_report_data_round_trips_through_json() -> None:
    report = FleetReport(2, (outcome("a", "failed", 1, step="s", error="e", code="x = 1"),), seconds=0.1)
    data = ReportData(
        "t", (from_fleet_report(report, "one"), Section("scan", "drift", drift=(Group.of(1, ["d"], ["a"]),)))
    )
    assert ReportData.from_dict(json.loads(json.dumps(data.to_dict()))) == data


def test_write_html_makes_the_folder_and_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "report.html"
    write_html(target, ReportData("first"))
    write_html(target, ReportData("second"))
    assert "<title>second</title>" in target.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]


def test_write_html_over_a_folder_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a folder") as raised:
        write_html(tmp_path, ReportData("t"))
    assert raised.value.filename == str(tmp_path)


@pytest.mark.parametrize(
    ("where", "message"),
    [("folder", "--html {}: is a folder"), ("afile/r.html", "--html {}: {} is a file, not a folder")],
)
def test_demo_refuses_an_html_file_it_cannot_write_before_migrating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str, message: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("")
    target = tmp_path / where
    assert main(["demo", str(EXAMPLE), "--count", "2", "--html", str(target)]) == 2
    out, err = capsys.readouterr()
    assert message.format(target, tmp_path / "afile") in err
    assert "built" not in out  # refused before any tenant was made


def test_demo_writes_an_html_report(tmp_path: Path) -> None:
    target = tmp_path / "demo.html"
    assert main(["demo", str(EXAMPLE), "--count", "30", "--workers", "1", "--html", str(target)]) == 0
    text = target.read_text()
    assert "fake tenants: 30 tenants" in text
    assert "snapshots" in text  # the example's real-ish snapshots are a second section
    assert text.count('<section class="report-section"') == 2


# --- in a real browser -------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium() -> str:
    """The headless browser: $TENANTDB_CHROMIUM, else chromium (or chrome) on PATH; a missing one
    fails the test, saying how to get it."""
    named = os.environ.get("TENANTDB_CHROMIUM")
    found = shutil.which(named) if named else next(filter(None, map(shutil.which, BROWSERS)), None)
    if found is None:
        pytest.fail(
            (f"TENANTDB_CHROMIUM={named} is not an executable. " if named else "No chromium on PATH. ")
            + "The HTML report is tested in a headless browser: run `make browser` (installs Debian's "
            "chromium package with apt-get, as root), or install Chromium or Chrome yourself and put "
            "it on PATH or set TENANTDB_CHROMIUM=/path/to/it.",
            pytrace=False,
        )
    return found


def test_a_missing_browser_fails_saying_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTDB_CHROMIUM", "no-such-browser")
    with pytest.raises(pytest.fail.Exception, match="TENANTDB_CHROMIUM=no-such-browser is not") as failed:
        chromium()
    assert "run `make browser`" in str(failed.value)
    monkeypatch.delenv("TENANTDB_CHROMIUM")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(pytest.fail.Exception, match=r"No chromium on PATH\. .*make browser"):
        chromium()


def headless(browser: str, profile: Path, *args: str) -> str:
    command = [browser, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}"
    return done.stdout


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the rows of an 8-bit RGB / RGBA PNG (what Chromium writes), decoded with
    zlib and struct: each row a bytes of width * channels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, idat, header = 8, [], b""
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat.append(body)
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG kind {header!r}"
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:  # Sub
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 255
        elif kind == 2:  # Up
            line = bytearray((a + b) & 255 for a, b in zip(line, previous, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 255
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b, c = previous[i], previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = rows[-1]
    return width, height, [bytes(row) for row in rows]


def test_report_in_headless_chromium(pytester: pytest.Pytester, tmp_path: Path) -> None:
    browser = chromium()
    project = fleet_project(pytester)
    project.runpytest("--tenantdb-report", "report.html").assert_outcomes(passed=1)
    page = (project.path / "report.html").as_uri()
    profile = tmp_path / "profile"

    dom = headless(browser, profile, "--dump-dom", page)
    assert re.findall(r'<div class="hbar" data-label="(\d+)" data-count="(\d+)">', dom) == [
        ("1", "8"), ("2", "8"), ("4", "4"),  # tenants per version before
        ("1", "3"), ("2", "2"), ("4", "15"),  # and after: the 5 failed stay where they were
    ]  # fmt: skip
    widths = re.findall(r'<span class="fill" style="width:([\d.]+)%">', dom)
    assert widths[:3] == ["100.00", "100.00", "50.00"]
    assert '<details class="group failure" data-count="5" open="">' in dom
    assert "5 tenants" in dom and "CHECK constraint failed" in dom
    assert '&lt;script&gt;document.title="pwned"&lt;/script&gt;' in dom  # shown as text
    assert "<script" not in dom  # and never an element
    assert "<title>tenantdb fleet report</title>" in dom  # no script ran

    shot = tmp_path / "report.png"
    headless(browser, profile, f"--screenshot={shot}", "--window-size=1200,900", page)
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 900)
    channels = len(rows[0]) // width
    pixels = [row[i : i + 3] for row in rows[::3] for i in range(0, len(row), channels * 3)]
    colours = set(pixels)
    inked = sum(1 for p in pixels if p != b"\xff\xff\xff")
    assert len(colours) > 20, f"the screenshot has {len(colours)} colours: blank?"
    assert inked > len(pixels) // 50, f"{inked} of {len(pixels)} sampled pixels are not white"
    assert b"\xc6\x28\x28" in colours  # the red of failures (#c62828): the stacked bar, the badge
    assert b"\x2e\x7d\x32" in colours  # the green of migrated tenants (#2e7d32)
