"""``tenantdb rehearse``: a release tried on copies of a folder of real tenant files.

Each tenant file (or a seeded sample of them) is first read the way ``tenantdb scan`` reads it
(:class:`~pytest_tenantdb.fleet.scan.Scanner`: read-only, the hash of ``sqlite_master`` first):

- a tenant already at the target version whose schema hash is its template's is *current*: it
  is neither copied nor migrated (so a no-op rehearsal of a current fleet costs one small read
  per tenant);
- a file that cannot be read as a tenant (empty, not SQLite, corrupted, locked, unreadable, a
  symbolic link, a hot journal, a version no step has) is reported with scan's status, and would
  fail the release;
- every other tenant (older, drifted) is copied with SQLite's backup API into the work folder and
  the copies are migrated by the fleet migrator (:func:`~pytest_tenantdb.fleet.migrator.migrate_many`).

The originals are only read. The result is a :class:`~pytest_tenantdb.fleet.report.FleetReport`
(failures grouped by step and error; files that could not be read are failures *before any
step*), the time per migrated tenant (median, 95th percentile) and an estimate of the whole
release at the chosen number of workers.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.fleet.directory import (
    UnreadableTenant,
    copy_tenant,
    list_tenant_files,
    tenant_id_of,
)
from pytest_tenantdb.fleet.migrator import migrate_many
from pytest_tenantdb.fleet.report import FleetReport, TenantOutcome
from pytest_tenantdb.fleet.scan import Scanner, TenantScan
from pytest_tenantdb.fleet.workers import die_with_parent

if TYPE_CHECKING:
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.progress import Progress

#: Scan statuses of a tenant that is copied and migrated (its migration decides its outcome).
MIGRATABLE = frozenset({"ok", "cosmetic", "drift"})
#: From this many files on, the read-only first look is spread over the workers (fork) too.
PARALLEL_SCAN = 512


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of ``values`` (nearest rank; 0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


@dataclass(frozen=True)
class Rehearsal:
    """What :func:`rehearse_directory` found.

    ``report``: one outcome per rehearsed file (``current``, ``migrated`` or ``failed``; a file
    that could not be read is ``failed`` before any step, its scan status in ``problems``).
    ``total``: the tenant files of the folder (``rehearsed`` of them were, all unless sampled).
    ``fast``: tenants found current without a copy (target version, template's schema hash).
    """

    folder: str
    pattern: str
    target: int
    report: FleetReport
    problems: tuple[TenantScan, ...]
    total: int
    fast: int
    workers: int
    sample: int | None = None
    seed: int = 0
    workdir: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no rehearsed tenant would fail the release."""
        return self.report.ok

    @property
    def rehearsed(self) -> int:
        return len(self.report)

    def migration_times(self) -> list[float]:
        """Seconds of each tenant the migrator ran on (migrated or failed in a step; not the
        current ones, nor the files that could not be read)."""
        unread = {p.tenant for p in self.problems}
        return [
            o.seconds
            for o in self.report.outcomes
            if o.status == "migrated" or (o.status == "failed" and o.tenant not in unread and o.start >= 0)
        ]

    def estimate(self) -> dict[str, float]:
        """An estimate of the release on the whole folder at ``workers`` workers: mean seconds per
        migrated tenant x the tenants that would need migrating (the rehearsed share of them,
        extrapolated to ``total`` when sampled) / workers. It leaves out the app's own load."""
        times = self.migration_times()
        mean = statistics.fmean(times) if times else 0.0
        share = len(times) / self.rehearsed if self.rehearsed else 0.0
        tenants = share * self.total
        return {
            "mean_seconds_per_tenant": mean,
            "tenants_to_migrate": tenants,
            "workers": self.workers,
            "seconds": mean * tenants / max(1, self.workers),
        }

    def timings(self) -> dict[str, float]:
        times = self.migration_times()
        return {
            "migrated_tenants": len(times),
            "median_seconds": statistics.median(times) if times else 0.0,
            "p95_seconds": percentile(times, 0.95),
        }

    def summary(self, *, failures: int = 10) -> str:
        """The rehearsal as text: what was rehearsed, outcomes by start version, failure groups,
        time per tenant and the estimate of the release."""
        totals = self.report.totals()
        sampled = (
            f"a sample of {self.rehearsed} (seed {self.seed})" if self.sample is not None else "all of them"
        )
        lines = [
            f"{self.folder}: {self.total} tenant file(s) matching {self.pattern}; rehearsed {sampled} -> "
            f"version {self.target} on copies with {self.workers} worker(s) in {self.seconds:.2f}s "
            "(the originals were only read)",
            f"outcomes: {totals['migrated']} migrated, {totals['current']} already current "
            f"({self.fast} of them without a copy), {totals['failed']} would fail",
        ]
        by_start = self.report.by_start_version()
        if by_start:
            lines.append("by start version (-1: could not be read):")
            for version, counts in by_start.items():
                lines.append(
                    f"  {version}: " + ", ".join(f"{status} {n}" for status, n in counts.items() if n)
                )
        if self.report.failed:
            lines.append("would fail (grouped by step and error):")
            lines.append("  " + self.report.failures_text(failures).replace("\n", "\n  "))
        timing = self.timings()
        if timing["migrated_tenants"]:
            lines.append(
                f"time per migrated tenant: median {_ms(timing['median_seconds'])}, "
                f"95th percentile {_ms(timing['p95_seconds'])} ({int(timing['migrated_tenants'])} tenants)"
            )
        guess = self.estimate()
        lines.append(
            f"estimate of the release: about {_duration(guess['seconds'])} for "
            f"{round(guess['tenants_to_migrate'])} tenant(s) to migrate of {self.total} at {self.workers} "
            "worker(s) (an estimate: mean time per tenant x tenants / workers, measured on copies here)"
        )
        if self.workdir:
            lines.append(f"copies: {self.workdir}")
        lines.append(
            "result: "
            + ("no tenant would fail" if self.ok else f"{len(self.report.failed)} tenant(s) would fail")
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: everything the text and HTML reports show."""
        groups = self.report.failure_groups()
        return {
            "folder": self.folder,
            "pattern": self.pattern,
            "target": self.target,
            "total": self.total,
            "rehearsed": self.rehearsed,
            "sample": self.sample,
            "seed": self.seed,
            "workers": self.workers,
            "workdir": self.workdir,
            "seconds": round(self.seconds, 4),
            "ok": self.ok,
            "totals": self.report.totals(),
            "current_without_copy": self.fast,
            "by_start_version": {str(v): c for v, c in self.report.by_start_version().items()},
            "failure_groups": [
                {"step": g.step, "error": g.error, "count": len(g.outcomes), "tenants": g.tenants}
                for g in groups
            ],
            "problems": [p.to_dict() for p in self.problems],
            "timings": self.timings(),
            "estimate": self.estimate(),
            "tenants": [dataclasses.asdict(o) for o in self.report.outcomes],
        }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return _ms(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _unreadable(scan: TenantScan) -> TenantOutcome:
    version = scan.version if scan.version is not None else -1
    return TenantOutcome(
        scan.tenant,
        scan.path,
        "failed",
        version,
        version,
        error=f"{scan.status}: {scan.detail}",
    )


def rehearse_directory(
    folder: Path,
    templates: TemplateCache,
    workdir: Path,
    pattern: str = "*.db",
    *,
    target: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    workers: int = 1,
    timeout: float = 1.0,
    progress: Progress | None = None,
) -> Rehearsal:
    """Rehearse the release of ``templates.migrations`` to ``target`` (default head) on copies of
    the tenant files of ``folder`` (or ``sample`` of them, drawn with ``seed``), written under
    ``workdir`` (new or empty). ``folder`` is only read."""
    started = time.perf_counter()
    migrations = templates.migrations
    goal = migrations.head if target is None else target
    listing = list_tenant_files(folder, pattern)
    if workdir.exists() and (not workdir.is_dir() or any(workdir.iterdir())):
        raise ConfigError(f"{workdir}: the copies need a new or empty folder; name another one")
    resolved = workdir.resolve()
    if resolved == folder.resolve() or resolved.is_relative_to(folder.resolve()):
        raise ConfigError(f"{workdir}: the copies cannot go inside the folder of originals {folder}")
    copies = workdir / "tenants"
    copies.mkdir(parents=True, exist_ok=True)

    entries: list[Path | TenantScan] = [*listing.files]
    entries += [
        TenantScan(tenant_id_of(p.path), str(p.path), p.status, detail=p.detail) for p in listing.problems
    ]
    total = len(entries)
    if sample is not None and sample < total:
        names = sorted(entries, key=_name)
        entries = random.Random(seed).sample(names, sample)
    entries.sort(key=_name)

    scanner = Scanner(templates, timeout=timeout)
    scanner.template(goal)  # fingerprinted once, before any worker is forked
    scanned = iter(scan_files(scanner, [e for e in entries if isinstance(e, Path)], workers))
    outcomes: dict[str, TenantOutcome] = {}
    problems: list[TenantScan] = []
    to_migrate: list[tuple[str, Path]] = []
    originals: dict[Path, Path] = {}
    fast = 0
    for index, entry in enumerate(entries):
        key = _name(entry)
        scan = entry if isinstance(entry, TenantScan) else next(scanned)
        if scan.status not in MIGRATABLE:
            problems.append(scan)
            outcomes[key] = _unreadable(scan)
            continue
        if scan.status == "ok" and scan.version == goal:
            fast += 1
            outcomes[key] = TenantOutcome(scan.tenant, scan.path, "current", goal, goal)
            continue
        copy = copies / f"{index:07d}.sqlite3"  # any file name is a safe copy name
        try:
            copy_tenant(Path(scan.path), copy, timeout)
        except UnreadableTenant as exc:
            failed = TenantScan(scan.tenant, scan.path, exc.status, scan.version, detail=exc.detail)
            problems.append(failed)
            outcomes[key] = _unreadable(failed)
            continue
        originals[copy] = Path(scan.path)
        to_migrate.append((scan.tenant, copy))

    if to_migrate:
        for outcome in migrate_many(
            to_migrate,
            migrations,
            goal,
            templates.store,
            workers,
            timeout=max(timeout, 5.0),
            progress=progress,
        ):
            original = originals[Path(outcome.path)]
            outcomes[original.name] = _as_original(outcome, original)

    ordered = tuple(outcomes[_name(e)] for e in entries)
    seconds = time.perf_counter() - started
    report = FleetReport(goal, ordered, seconds, workers, label=str(folder))
    return Rehearsal(
        str(folder),
        pattern,
        goal,
        report,
        tuple(problems),
        total,
        fast,
        workers,
        sample,
        seed,
        str(workdir),
        seconds,
    )


_SCANNER: list[Scanner] = []


def _scan_chunk(paths: list[Path]) -> list[TenantScan]:
    return [_SCANNER[0].scan_file(path) for path in paths]


def scan_files(scanner: Scanner, paths: Sequence[Path], workers: int = 1) -> list[TenantScan]:
    """``scanner.scan_file`` of each path, in order; spread over ``workers`` forked processes
    when there are many (each file is still opened read-only, one at a time per process)."""
    if workers <= 1 or len(paths) < PARALLEL_SCAN or "fork" not in multiprocessing.get_all_start_methods():
        return [scanner.scan_file(path) for path in paths]
    size = max(64, len(paths) // (workers * 4))
    chunks = [list(paths[i : i + size]) for i in range(0, len(paths), size)]
    _SCANNER[:] = [scanner]  # inherited by the forked workers
    try:
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=die_with_parent,
            initargs=(os.getpid(),),
        ) as pool:
            return [scan for chunk in pool.map(_scan_chunk, chunks) for scan in chunk]
    finally:
        _SCANNER.clear()


def _name(entry: Path | TenantScan) -> str:
    return entry.name if isinstance(entry, Path) else Path(entry.path).name


def _as_original(outcome: TenantOutcome, original: Path) -> TenantOutcome:
    """The copy's outcome told of the original file (its path in place of the copy's)."""
    error = outcome.error.replace(outcome.path, str(original)) if outcome.error else outcome.error
    return dataclasses.replace(outcome, path=str(original), error=error)
