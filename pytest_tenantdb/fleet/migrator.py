"""Migrating tenant databases the way a release does: one tenant at a time, nothing lost.

For each tenant: restore a backup left by an interrupted run, read the version, take a backup,
run each step in its own transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, with the version
recorded inside it), then drop the backup. A failing tenant is restored byte-identical from
its backup and reported with the step, statement and error; the others carry on. Tenants can
be spread over worker processes; a worker killed mid-step leaves a backup the next run restores.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from pytest_tenantdb import database
from pytest_tenantdb.errors import StepFailure, TenantDatabaseError
from pytest_tenantdb.fleet.report import TenantOutcome
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.migrations.runner import run_plan
from pytest_tenantdb.versioning import VersionStore

BACKUP_SUFFIX = ".tenantdb-backup"


def backup_path(path: Path) -> Path:
    """Where the backup of ``path`` lives while it is being migrated."""
    return path.with_name(path.name + BACKUP_SUFFIX)


def restore(path: Path) -> bool:
    """Put back the backup of ``path`` if one is there (an interrupted or failed run)."""
    backup = backup_path(path)
    if not backup.exists():
        return False
    database.remove_side_files(path)
    database.copy_file(backup, path)
    backup.unlink()
    return True


def migrate_tenant(
    tenant: str,
    path: Path,
    migrations: MigrationSet,
    target: int,
    store: VersionStore,
    timeout: float = 5.0,
) -> TenantOutcome:
    """Bring one tenant database to ``target``; never raises for a problem of the tenant's own."""
    started = time.perf_counter()
    recovered = restore(path)

    def outcome(
        status: str, start: int, end: int, applied: Sequence[str] = (), **failure: str | None
    ) -> TenantOutcome:
        return TenantOutcome(
            tenant,
            str(path),
            status,
            start,
            end,
            tuple(applied),
            recovered=recovered,
            seconds=time.perf_counter() - started,
            **failure,
        )

    try:
        conn = database.connect(path, timeout=timeout)
    except TenantDatabaseError as exc:
        return outcome("failed", -1, -1, error=str(exc))
    try:
        try:
            start = store.read(conn)
        except sqlite3.Error as exc:
            return outcome("failed", -1, -1, error=str(database.explain(path, exc)))
        except TenantDatabaseError as exc:  # a version table the history cannot place
            return outcome("failed", -1, -1, error=f"{path}: {exc}")
        known = (0, *migrations.versions)
        if start not in known:
            return outcome(
                "failed",
                start,
                start,
                error=f"tenant is at version {start}, which no step of {migrations.origin} has "
                "(a newer release, or a foreign database?)",
            )
        plan = migrations.plan(start, target)
        if not plan:
            return outcome("current", start, start)
        database.copy_file(path, backup_path(path))
        try:
            applied = run_plan(conn, migrations, plan, store)
        except StepFailure as exc:
            conn.close()
            restore(path)
            return outcome(
                "failed",
                start,
                start,
                step=exc.step,
                statement=exc.statement,
                location=exc.location,
                error=exc.error,
            )
        conn.close()
        backup_path(path).unlink()
        return outcome("migrated", start, target, applied)
    finally:
        conn.close()


# -- worker processes -----------------------------------------------------------------------

_WORKER_STATE: list[tuple[MigrationSet, int, VersionStore, float]] = []


def _init_worker(migrations: MigrationSet, target: int, store: VersionStore, timeout: float) -> None:
    _WORKER_STATE[:] = [(migrations, target, store, timeout)]


def _migrate_chunk(chunk: list[tuple[str, Path]]) -> list[TenantOutcome]:
    migrations, target, store, timeout = _WORKER_STATE[0]
    return [migrate_tenant(tenant, path, migrations, target, store, timeout) for tenant, path in chunk]


def migrate_many(
    tenants: Sequence[tuple[str, Path]],
    migrations: MigrationSet,
    target: int,
    store: VersionStore,
    workers: int = 1,
    timeout: float = 5.0,
) -> list[TenantOutcome]:
    """Migrate every tenant, in this process or spread over ``workers`` processes."""
    if workers <= 1 or len(tenants) < 2:
        return [migrate_tenant(t, p, migrations, target, store, timeout) for t, p in tenants]
    size = max(1, len(tenants) // (workers * 4))
    chunks = [list(tenants[i : i + size]) for i in range(0, len(tenants), size)]
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    outcomes: list[TenantOutcome] = []
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(migrations, target, store, timeout),
    ) as pool:
        futures = [pool.submit(_migrate_chunk, chunk) for chunk in chunks]
        for chunk, future in zip(chunks, futures, strict=True):
            try:
                outcomes.extend(future.result())
            except BrokenProcessPool:
                outcomes.extend(
                    TenantOutcome(
                        tenant,
                        str(path),
                        "failed",
                        -1,
                        -1,
                        error="the worker process died; the next migrate() restores the tenant's "
                        "backup and retries it",
                    )
                    for tenant, path in chunk
                )
    return outcomes
