"""Benchmarks of the core engine. Every figure is a ratio against a baseline run side by side.

- build:   mixed-version fleet from cached templates (seeding included) vs. migrating each
           tenant from empty and seeding it (target: >= 50x faster), and vs. only copying the
           template files, the floor (target: within 3x);
- migrate: fleet.migrate vs. plain executescript of the same steps on the same files
           (target: <= 15 % overhead), and 2 workers vs. 1 (target: faster);
- progress: building a fleet with progress as pytest has it (drawn after 2 s) vs. without
           (target: <= 5 % overhead), with the bar drawn from the start (target: <= 10 ms
           added), and migrating it with the bar drawn (target: <= 5 % overhead);
- plugin:  `pytest --co` on an empty project with the plugin vs. `-p no:tenantdb`
           (target: <= 30 ms added).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pytest_tenantdb.fleet.fleet import Fleet, FleetBuilder
from pytest_tenantdb.fleet.seeding import SIZE_ROWS, Seeder
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet, PythonStep, SqlStep
from pytest_tenantdb.schema import Schema
from pytest_tenantdb.versioning import UserVersionStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example" / "migrations"
MIX = {"head": 0.5, "head-1": 0.2, "head-2": 0.15, "head-5": 0.1, "oldest": 0.05}
SIZES = {"full": 1000, "smoke": 40}
REPEATS = 3
BUILD_REPEATS = 9


@dataclass(frozen=True)
class Figure:
    """One measured comparison: ours vs. a baseline, and the target for the ratio."""

    name: str
    ours: float
    baseline: float
    unit: str
    target: str
    met: bool

    @property
    def ratio(self) -> float:
        return self.baseline / self.ours if self.ours else float("inf")

    def row(self) -> str:
        return (
            f"{self.name:<44} ours {self.ours:9.4f}{self.unit}  baseline {self.baseline:9.4f}{self.unit}  "
            f"ratio {self.ratio:7.2f}  target {self.target:<18} {'met' if self.met else 'MISSED'}"
        )


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _builder(workdir: Path, migrations: MigrationSet, cache: Path, name: str) -> FleetBuilder:
    return FleetBuilder(workdir / name, TemplateCache(cache, migrations, UserVersionStore()), seed=1)


def bench_build(
    workdir: Path, count: int, migrations: MigrationSet | None = None, prefix: str = ""
) -> list[Figure]:
    """``migrations``: another source (the Alembic fixture) measured the same way."""
    migrations = migrations or MigrationSet.from_path(EXAMPLE)
    cache = workdir / "cache"
    warm = TemplateCache(cache, migrations, UserVersionStore())
    for version in (0, *migrations.versions):
        warm.schema_template(version)  # "cached templates": schema templates exist already
    import faker  # noqa: F401  -- a one-time import cost of the process, paid by neither side

    # ours: fleet from cached schema templates, seeding (per version, size class, variant)
    # included: each repeat uses a seed never used before, so no seeded template is cached.
    # Best of three, as for the floor below: disk noise only ever adds time.
    fleets: list[Fleet] = []
    ours = min(
        _timed(
            lambda n=n: fleets.append(
                _builder(workdir, migrations, cache, f"ours{n}").build(count, MIX, seed=1000 + n)
            )
        )
        for n in range(REPEATS)
    )
    fleet = fleets[0]
    seed = 1000
    plan = [(t.version, t.size) for t in fleet]

    # baseline: each tenant migrated from empty, then seeded the same way
    seeder = Seeder(seed)
    seeder.pool("email")  # warm Faker once, so the baseline pays for rows, not for Faker start-up
    base_dir = workdir / "baseline"
    base_dir.mkdir()

    def from_empty() -> None:
        for n, (version, size) in enumerate(plan):
            conn = sqlite3.connect(base_dir / f"t{n}.sqlite3", isolation_level=None)
            for step in migrations:
                if step.version > version:
                    break
                conn.execute("BEGIN")
                step.run(conn)
                conn.execute(f"PRAGMA user_version = {step.version}")
                conn.execute("COMMIT")
            if SIZE_ROWS[size]:
                seeder.fill(conn, Schema.from_connection(conn), SIZE_ROWS[size], variant=n % 2)
            conn.close()

    baseline = _timed(from_empty)
    # floor: only copying the template files
    sources = [t.path for t in fleet]
    floor_dir = workdir / "floor"
    floor_dir.mkdir()
    floor = min(
        _timed(
            lambda r=r: [
                shutil.copyfile(src, floor_dir / f"t{r}-{n}.sqlite3") for n, src in enumerate(sources)
            ]
        )
        for r in range(REPEATS)
    )
    return [
        Figure(
            f"{prefix}fleet of {count} vs migrate+seed each from empty",
            ours,
            baseline,
            "s",
            ">= 50x faster",
            baseline / ours >= 50,
        ),
        Figure(
            f"{prefix}fleet of {count} vs copying files only (floor)",
            ours,
            floor,
            "s",
            "within 3x of floor",
            ours / floor <= 3,
        ),
    ]


def _plain_migrate(fleet: Fleet, migrations: MigrationSet) -> None:
    """The baseline: what a hand-written loop does, executescript per step, no safety net."""
    for tenant in fleet:
        conn = sqlite3.connect(tenant.path, isolation_level=None)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for step in migrations:
            if step.version <= version:
                continue
            if isinstance(step, SqlStep):
                body = "\n".join(s.sql for s in step.up)
                conn.executescript(f"BEGIN;\n{body}\nPRAGMA user_version = {step.version};\nCOMMIT;")
            else:
                assert isinstance(step, PythonStep)
                conn.execute("BEGIN")
                step.module().up(conn)
                conn.execute(f"PRAGMA user_version = {step.version}")
                conn.execute("COMMIT")
        conn.close()


def bench_migrate(workdir: Path, count: int) -> list[Figure]:
    migrations = MigrationSet.from_path(EXAMPLE)
    cache = workdir / "cache"
    mix = {"oldest": 0.3, 5: 0.4, "head-2": 0.3}
    fleets = {
        name: _builder(workdir, migrations, cache, name).build(count, mix, seed=3)
        for name in ("plain", "one", "two")
    }
    plain = _timed(lambda: _plain_migrate(fleets["plain"], migrations))
    reports = {}
    one = _timed(lambda: reports.setdefault("one", fleets["one"].migrate(workers=1)))
    two = _timed(lambda: reports.setdefault("two", fleets["two"].migrate(workers=2)))
    assert reports["one"].ok and reports["two"].ok
    assert fleets["plain"].versions() == fleets["one"].versions() == {migrations.head: count}
    return [
        Figure(
            f"fleet.migrate {count} tenants vs plain executescript",
            one,
            plain,
            "s",
            "<= 15% overhead",
            one <= plain * 1.15,
        ),
        Figure(
            f"fleet.migrate {count} tenants, 2 workers vs 1", two, one, "s", "2 workers faster", two < one
        ),
    ]


def bench_progress(workdir: Path, count: int) -> list[Figure]:
    """A fleet built and migrated with progress against none, from warm templates so that the
    loop, where progress could show, is all that is measured: as pytest has it (drawn after
    2 s, so a quick build only counts) and drawn for the whole task (a terminal, no delay: the
    worst case). Best of nine builds and three migrations each, interleaved."""
    import io

    from rich.console import Console

    from pytest_tenantdb.progress import PYTEST_DELAY, RichProgress

    migrations = MigrationSet.from_path(EXAMPLE)
    cache = workdir / "cache"
    mix = {"oldest": 0.3, 5: 0.4, "head-2": 0.3}
    screen = io.StringIO()
    modes: dict[str, Callable[[], RichProgress | None]] = {
        "none": lambda: None,
        "pytest": lambda: RichProgress(lambda: Console(file=screen), delay=PYTEST_DELAY),
        "drawn": lambda: RichProgress(lambda: Console(file=screen, force_terminal=True, width=120)),
    }
    _builder(workdir, migrations, cache, "warm").build(count, mix, seed=3)  # seeded templates cached
    build: dict[str, list[float]] = {mode: [] for mode in modes}
    migrate: dict[str, list[float]] = {mode: [] for mode in ("none", "drawn")}
    for n in range(BUILD_REPEATS):  # a build is short: more repeats to see past the noise
        for mode, progress in modes.items():
            builder = _builder(workdir, migrations, cache, f"{mode}{n}")
            builder.progress = progress()
            started = time.perf_counter()
            fleet = builder.build(count, mix, seed=3)
            build[mode].append(time.perf_counter() - started)
            if mode in migrate and n < REPEATS:
                migrate[mode].append(_timed(lambda f=fleet: f.migrate(workers=1)))
    assert "migrating tenants" in screen.getvalue()
    none = min(build["none"])
    figures = [
        Figure(
            f"build {count} tenants, progress as in pytest vs none",
            min(build["pytest"]),
            none,
            "s",
            "<= 5% overhead",
            min(build["pytest"]) <= none * 1.05,
        ),
        Figure(
            f"build {count} tenants, progress drawn vs none",
            min(build["drawn"]),
            none,
            "s",
            "<= 10 ms added",
            min(build["drawn"]) - none <= 0.010,
        ),
        Figure(
            f"migrate {count} tenants, progress drawn vs none",
            min(migrate["drawn"]),
            min(migrate["none"]),
            "s",
            "<= 5% overhead",
            min(migrate["drawn"]) <= min(migrate["none"]) * 1.05,
        ),
    ]
    return figures


def _collect_seconds(project: Path, *extra: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *extra],
        cwd=project,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def bench_plugin(workdir: Path, runs: int) -> list[Figure]:
    project = workdir / "empty-project"
    project.mkdir()
    (project / "test_nothing.py").write_text("def test_a():\n    pass\n")
    _collect_seconds(project)  # warm the OS file cache
    times_with: list[float] = []
    times_without: list[float] = []
    for _ in range(runs):  # interleaved, so machine noise hits both alike
        times_with.append(_collect_seconds(project))
        times_without.append(_collect_seconds(project, "-p", "no:tenantdb"))
    # the minimum is the run least disturbed by the machine; noise only ever adds time
    with_plugin, without = min(times_with), min(times_without)
    added_ms = (with_plugin - without) * 1000
    return [
        Figure(
            f"pytest --co, plugin vs -p no:tenantdb ({added_ms:+.1f} ms)",
            with_plugin,
            without,
            "s",
            "<= 30 ms added",
            added_ms <= 30,
        )
    ]


def run_parts(
    workdir: Path, parts: Sequence[tuple[str, Callable[[Path, int], list[Figure]], int]]
) -> list[Figure]:
    """Each ``(name, bench, amount)`` run in a sub-folder of ``workdir`` of its own, removed after."""
    figures: list[Figure] = []
    for name, bench, amount in parts:
        part = workdir / name
        part.mkdir()
        figures.extend(bench(part, amount))
        shutil.rmtree(part, ignore_errors=True)
    return figures


def standalone(run: Callable[[Path, str], list[Figure]], description: str | None, prefix: str) -> None:
    """``python -m benchmarks.<name> [--size smoke|full]``: print each figure of ``run``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=["smoke", "full"], default="full")
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for figure in run(Path(tmp), parser.parse_args().size):
            print(figure.row())


def run_all(size: str = "smoke") -> list[Figure]:
    """Run every benchmark at ``size`` (``smoke`` in the test suite, ``full`` for make bench)."""
    count = SIZES[size]
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="tenantdb-bench-") as tmp:
        workdir = Path(tmp)
        for name, bench in (("build", bench_build), ("migrate", bench_migrate), ("progress", bench_progress)):
            part = workdir / name
            part.mkdir()
            figures.extend(bench(part, count))
        part = workdir / "plugin"
        part.mkdir()
        figures.extend(bench_plugin(part, runs=15 if size == "full" else 2))
        from benchmarks.checker import bench_checker
        from benchmarks.checks import bench_builtin_checks, bench_examples
        from benchmarks.sources import bench_sources
        from benchmarks.squawk import bench_squawk

        for name, bench_checks, amount in (
            ("examples", bench_examples, 300 if size == "full" else 20),
            ("checks", bench_builtin_checks, 100 if size == "full" else 3),
            ("checker", bench_checker, 1000 if size == "full" else 30),
            ("squawk", bench_squawk, 0),
        ):
            part = workdir / name
            part.mkdir()
            figures.extend(bench_checks(part, amount))
        figures.extend(bench_sources(workdir / "sources", size == "full"))
        from benchmarks.realworld import bench_realworld

        figures.extend(bench_realworld(workdir / "realworld", size == "full"))
        from benchmarks.long_history import bench_long_history

        figures.extend(bench_long_history(workdir, size == "full"))
        from benchmarks.scan import run as bench_scan_and_query

        part = workdir / "scan"
        part.mkdir()
        figures.extend(bench_scan_and_query(part, size))
        from benchmarks.rehearse import run as bench_rehearse

        part = workdir / "rehearse"
        part.mkdir()
        figures.extend(bench_rehearse(part, size))
    return figures
