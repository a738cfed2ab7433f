"""Benchmarks of ``tenantdb rehearse`` on folders of tenant files.

- noop:    a rehearsal at 2 workers of a folder whose tenants are all at head (each read once,
           its schema hash compared with the template's; nothing copied or migrated) vs. copying
           every tenant with SQLite's backup API, what a rehearsal without the fast path would do
           first (target: 10,000 tenants in <= 2 s, and faster than the copies). Both run on a
           folder that is in the page cache and flushed, as one that has been on disk a while;
- sample:  a rehearsal of a seeded sample of 10 % of a folder at mixed versions vs. rehearsing
           all of it (target: faster; the estimate of the release is within 2x of the full run's).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.fleet import EXAMPLE, Figure, run_parts, standalone
from pytest_tenantdb.fleet.directory import copy_tenant
from pytest_tenantdb.fleet.fleet import FleetBuilder
from pytest_tenantdb.fleet.rehearse import rehearse_directory
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import UserVersionStore

SIZES = {"full": 10_000, "smoke": 100}
MIXED = {"full": 1_000, "smoke": 40}
TARGET_SECONDS = 2.0  # for 10,000 current tenants


def _templates(workdir: Path) -> TemplateCache:
    migrations = MigrationSet.from_path(EXAMPLE)
    templates = TemplateCache(workdir / "cache", migrations, UserVersionStore())
    for version in (0, *migrations.versions):
        templates.schema_template(version)  # built once per project, kept in its cache
    return templates


def bench_noop(workdir: Path, count: int) -> list[Figure]:
    templates = _templates(workdir)
    fleet = FleetBuilder(workdir / "tenants", templates, seed=1).build(
        count, {"head": 1.0}, sizes="empty", name="fleet"
    )
    folder = fleet[0].path.parent
    os.sync()  # the build's writes flushed: they would compete with the reads measured here
    rehearse_directory(
        folder, templates, workdir / "warm", "*.sqlite3", workers=2
    )  # files in the page cache, as the copies below find them
    started = time.perf_counter()
    result = rehearse_directory(folder, templates, workdir / "work", "*.sqlite3", workers=2)
    ours = time.perf_counter() - started
    assert result.ok and result.fast == count, result.summary()
    copies = workdir / "copies"
    copies.mkdir()
    started = time.perf_counter()
    for path in sorted(folder.glob("*.sqlite3")):
        copy_tenant(path, copies / path.name)
    baseline = time.perf_counter() - started
    scaled = ours * 10_000 / count
    return [
        Figure(
            f"no-op rehearse of {count} tenants vs copying each",
            ours,
            baseline,
            "s",
            "<= 2s/10k, faster",
            scaled <= TARGET_SECONDS and ours < baseline,
        )
    ]


def bench_sample(workdir: Path, count: int) -> list[Figure]:
    templates = _templates(workdir)
    fleet = FleetBuilder(workdir / "tenants", templates, seed=2).build(
        count, {"head": 0.5, "head-1": 0.3, "oldest": 0.2}, sizes="small", name="fleet"
    )
    folder = fleet[0].path.parent
    started = time.perf_counter()
    sampled = rehearse_directory(
        folder, templates, workdir / "sample", "*.sqlite3", sample=count // 10, seed=3
    )
    ours = time.perf_counter() - started
    started = time.perf_counter()
    whole = rehearse_directory(folder, templates, workdir / "all", "*.sqlite3")
    baseline = time.perf_counter() - started
    assert sampled.ok and whole.ok and sampled.rehearsed == count // 10, sampled.summary()
    guess, real = sampled.estimate()["seconds"], whole.estimate()["seconds"]
    close = real > 0 and guess > 0 and max(guess, real) / min(guess, real) <= 2.0
    return [
        Figure(
            f"rehearse a 10% sample of {count} vs all (estimate {guess:.2f}s vs {real:.2f}s)",
            ours,
            baseline,
            "s",
            "faster, est. in 2x",
            ours < baseline and close,
        )
    ]


def run(workdir: Path, size: str) -> list[Figure]:
    return run_parts(workdir, (("noop", bench_noop, SIZES[size]), ("sample", bench_sample, MIXED[size])))


if __name__ == "__main__":  # python -m benchmarks.rehearse [--size full]
    standalone(run, __doc__, "tenantdb-bench-rehearse-")
