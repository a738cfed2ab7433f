"""Benchmarks of ``tenantdb scan`` and ``fleet.query`` on folders of tenant files.

- scan:    a mixed-version folder (1 % drifted) scanned (hash of ``sqlite_master`` first, full
           introspection only on a mismatch) vs. introspecting and diffing every tenant, the way
           a scan without the hash would (target: 10,000 tenants in <= 10 s, and faster than it);
- files:   a folder of 100,000 files (``full``; tenants, empty files, files that are not SQLite,
           other names) scanned vs. ten scans of a folder a tenth its size (target: within 1.5x:
           linear in the number of files, one file open at a time);
- query:   ``fleet.query`` of a row count over the fleet (ATTACHed in batches) vs. one plain
           ``sqlite3`` connection per tenant (target: within 1.5x).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from benchmarks.fleet import EXAMPLE, Figure, run_parts, standalone
from pytest_tenantdb.fleet.fleet import FleetBuilder
from pytest_tenantdb.fleet.scan import scan_directory
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.schema import Schema, SchemaDiff
from pytest_tenantdb.versioning import TABLES, UserVersionStore

SIZES = {"full": 10_000, "smoke": 100}
FILES = {"full": 100_000, "smoke": 2_000}
TARGET_SECONDS = 10.0  # for 10,000 tenants


def _folder(workdir: Path, templates: TemplateCache, count: int) -> Path:
    """``count`` tenants at mixed versions, 1 % of the head ones missing a column."""
    fleet = FleetBuilder(workdir / "tenants", templates, seed=1).build(
        count, {"head": 0.7, "head-1": 0.2, "oldest": 0.1}, sizes="empty", name="fleet"
    )
    folder = workdir / "tenants" / "fleet"
    for tenant in [t for t in fleet if t.version == templates.migrations.head][: max(1, count // 100)]:
        conn = sqlite3.connect(tenant.path)
        conn.execute("ALTER TABLE tags DROP COLUMN color")
        conn.close()
    return folder


def _introspect_all(folder: Path, templates: TemplateCache) -> int:
    """The baseline: every tenant's schema introspected and diffed against its template."""
    expected: dict[int, Schema] = {}
    drifted = 0
    for path in sorted(folder.glob("*.sqlite3")):
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version not in expected:
            template = sqlite3.connect(templates.schema_template(version))
            expected[version] = Schema.from_connection(template, ignore=TABLES)
            template.close()
        drifted += bool(SchemaDiff.between(expected[version], Schema.from_connection(conn, ignore=TABLES)))
        conn.close()
    return drifted


def bench_scan(workdir: Path, count: int) -> list[Figure]:
    migrations = MigrationSet.from_path(EXAMPLE)
    templates = TemplateCache(workdir / "cache", migrations, UserVersionStore())
    folder = _folder(workdir, templates, count)
    for version in (0, *migrations.versions):
        templates.schema_template(version)  # built once per project, kept in its cache
    Schema.from_connection(sqlite3.connect(templates.schema_template(migrations.head)))  # sqlglot imported
    started = time.perf_counter()
    result = scan_directory(folder, templates, "*.sqlite3")
    ours = time.perf_counter() - started
    drifted = max(1, count // 100)
    assert result.totals()["drift"] == drifted and result.introspected == drifted, result.summary()
    started = time.perf_counter()
    assert _introspect_all(folder, templates) == drifted
    baseline = time.perf_counter() - started
    scaled = ours * 10_000 / count
    return [
        Figure(
            f"scan {count} tenants vs introspecting each",
            ours,
            baseline,
            "s",
            "<= 10s/10k, faster",
            scaled <= TARGET_SECONDS and ours < baseline,
        )
    ]


def _files(folder: Path, count: int, data: bytes) -> None:
    """``count`` files: a quarter tenants, a quarter empty, a quarter not SQLite, a quarter other names."""
    folder.mkdir()
    for n in range(count):
        kind = n % 4
        content = data if kind == 0 else b"not sqlite" * 20 if kind == 2 else b""
        (folder / (f"f{n:06d}.db" if kind != 3 else f"f{n:06d}.txt")).write_bytes(content)


def bench_files(workdir: Path, count: int) -> list[Figure]:
    """A folder of ``count`` files, every one an outcome, vs. ten folders of a tenth as many."""
    migrations = MigrationSet.from_path(EXAMPLE)
    templates = TemplateCache(workdir / "cache", migrations, UserVersionStore())
    data = templates.schema_template(migrations.head).read_bytes()
    _files(workdir / "big", count, data)
    _files(workdir / "small", count // 10, data)
    scan_directory(workdir / "small", templates)  # templates fingerprinted, caches warm
    started = time.perf_counter()
    result = scan_directory(workdir / "big", templates)
    ours = time.perf_counter() - started
    assert len(result) == count - count // 4 and result.ignored == count // 4
    assert result.totals()["empty"] == result.totals()["ok"] == result.totals()["not_sqlite"] == count // 4
    started = time.perf_counter()
    for _ in range(10):
        scan_directory(workdir / "small", templates)
    baseline = time.perf_counter() - started
    return [
        Figure(
            f"scan a folder of {count} files vs 10 x {count // 10}",
            ours,
            baseline,
            "s",
            "linear: within 1.5x",
            ours <= baseline * 1.5,
        )
    ]


def bench_query(workdir: Path, count: int) -> list[Figure]:
    migrations = MigrationSet.from_path(EXAMPLE)
    templates = TemplateCache(workdir / "cache", migrations, UserVersionStore())
    fleet = FleetBuilder(workdir / "tenants", templates, seed=1).build(count, {"head": 1.0}, sizes="small")
    import sqlglot  # noqa: F401  -- a one-time import cost of the process

    started = time.perf_counter()
    result = fleet.query("SELECT count(*) FROM notes")
    ours = time.perf_counter() - started
    started = time.perf_counter()
    plain = {}
    for tenant in fleet:
        conn = sqlite3.connect(f"{tenant.path.resolve().as_uri()}?mode=ro", uri=True)
        plain[tenant.id] = conn.execute("SELECT count(*) FROM notes").fetchone()[0]
        conn.close()
    baseline = time.perf_counter() - started
    assert result.scalars() == plain
    return [
        Figure(
            f"fleet.query over {count} tenants vs a connection each",
            ours,
            baseline,
            "s",
            "within 1.5x",
            ours <= baseline * 1.5,
        )
    ]


def run(workdir: Path, size: str) -> list[Figure]:
    return run_parts(
        workdir,
        (
            ("scan", bench_scan, SIZES[size]),
            ("files", bench_files, FILES[size]),
            ("query", bench_query, 1000 if size == "full" else 50),
        ),
    )


if __name__ == "__main__":  # python -m benchmarks.scan [--size full]
    standalone(run, __doc__, "tenantdb-bench-scan-")
