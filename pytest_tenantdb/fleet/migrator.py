"""Migrating tenant databases the way a release does: one tenant at a time, nothing lost.

For each tenant: undo what an interrupted run left, read the version, take the tenant's write
lock, back it up through SQLite's backup API (rows still in a ``-wal`` file included), run the
steps in one transaction (the version recorded inside it) and commit. The lock is held from
before the backup until the commit or the undo, so no app commit can land in between and be
lost. A failing tenant is rolled back (or restored from its backup, in place) and reported with
the step, statement and error; the others carry on.

Two kinds of backup, told apart by name, say what a run killed half-way needs:

- ``<file>.tenantdb-spare``: all steps run in one transaction, which SQLite itself rolls back
  after a kill, so the next run just deletes the spare (restoring it would undo app writes made
  since). It is only used when a step ends the transaction on its own.
- ``<file>.tenantdb-backup``: a step runs outside a transaction (``VACUUM``...), so work may be
  committed half-way; the next run (or ``recover()``) restores it.
"""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, suppress
from pathlib import Path
from typing import Protocol

from pytest_tenantdb import database
from pytest_tenantdb.errors import StepFailure, TenantDatabaseError, TenantDBError
from pytest_tenantdb.fleet.locking import fleet_lock
from pytest_tenantdb.fleet.report import TenantOutcome
from pytest_tenantdb.fleet.workers import die_with_parent
from pytest_tenantdb.migrations import Direction, MigrationSet, Step
from pytest_tenantdb.migrations.runner import in_transaction, run_plan
from pytest_tenantdb.progress import Progress, counting
from pytest_tenantdb.versioning import VersionStore

BACKUP_SUFFIX = ".tenantdb-backup"
SPARE_SUFFIX = ".tenantdb-spare"
#: What a tenant's own problems raise: they become its outcome, never the run's exception.
TENANT_ERRORS = (OSError, sqlite3.Error, TenantDBError)

Plan = list[tuple[Step, Direction]]


def backup_path(path: Path) -> Path:
    """The backup the next run restores: a run that may have committed half-way keeps it here."""
    return path.with_name(path.name + BACKUP_SUFFIX)


def spare_path(path: Path) -> Path:
    """The backup of a run whose steps share one transaction (SQLite undoes a killed run itself)."""
    return path.with_name(path.name + SPARE_SUFFIX)


def _remove_partials(path: Path) -> None:
    """Half-written backups a killed run left (unique names, so only ever ours to delete)."""
    for suffix in (BACKUP_SUFFIX, SPARE_SUFFIX):
        for partial in path.parent.glob(f"{path.name}{suffix}.*.partial*"):
            partial.unlink(missing_ok=True)


def restore(path: Path, timeout: float = 5.0) -> bool:
    """Undo what an interrupted run left on ``path``; True when there was something to undo.

    A backup is written back into the file in place (same inode, owner and mode; other
    connections stay valid); a spare is deleted, SQLite having rolled the run's transaction back.
    Raises ``sqlite3.Error`` or ``OSError`` when the backup cannot be put back (it is then kept).
    """
    _remove_partials(path)
    backup, spare = backup_path(path), spare_path(path)
    undone = False
    if backup.exists():
        with closing(database.connect(path, timeout=timeout)) as conn:
            database.restore_into(backup, conn, timeout)
        database.remove_with_side_files(backup)
        undone = True
    if spare.exists():
        database.remove_with_side_files(spare)
        undone = True
    return undone


def migrate_tenant(
    tenant: str,
    path: Path,
    migrations: MigrationSet,
    target: int,
    store: VersionStore,
    timeout: float = 5.0,
) -> TenantOutcome:
    """Bring one tenant database to ``target``; never raises for a problem of the tenant's own.

    ``KeyboardInterrupt`` (or ``SystemExit`` outside a step) is re-raised, but only once the
    tenant is back where it started.
    """
    started = time.perf_counter()
    recovered = False

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
        recovered = restore(path, timeout)
    except TENANT_ERRORS as exc:
        return outcome(
            "failed",
            -1,
            -1,
            error=f"{path}: an interrupted run left a backup that cannot be put back ({exc}); it is "
            f"kept at {backup_path(path)}. Free space or release the lock, then run again.",
        )
    try:
        if database.is_empty_file(path):
            return outcome(
                "failed",
                -1,
                -1,
                error=f"{path}: empty file (0 bytes), not a tenant database; remove it "
                "or restore it from a backup.",
            )
        conn = database.connect(path, timeout=timeout)
    except (OSError, TenantDatabaseError) as exc:
        return outcome("failed", -1, -1, error=str(exc))
    with closing(conn):
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
        return _Run(conn, path, migrations, target, store, timeout, plan).go(outcome)


class _Outcome(Protocol):
    """The signature of ``migrate_tenant``'s ``outcome`` helper."""

    def __call__(
        self, status: str, start: int, end: int, applied: Sequence[str] = (), **failure: str | None
    ) -> TenantOutcome: ...


class _Run:
    """One tenant's migration once it is known to have steps to run."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        migrations: MigrationSet,
        target: int,
        store: VersionStore,
        timeout: float,
        plan: Plan,
    ) -> None:
        self.conn = conn
        self.path = path
        self.migrations = migrations
        self.target = target
        self.store = store
        self.timeout = timeout
        self.plan = plan
        # a step outside a transaction commits half-way: the tenant is held with an exclusive
        # lock for the whole run, and a kill leaves a backup the next run must restore
        self.exclusive = any(not step.transactional for step, _ in plan)
        self.backup = backup_path(path) if self.exclusive else spare_path(path)

    def go(self, outcome: _Outcome) -> TenantOutcome:
        start = -1
        try:
            start = self._lock()
        except TENANT_ERRORS as exc:
            self._release()
            return outcome("failed", start, start, error=self._lock_error(exc))
        if not self.plan:  # another run got there first
            self._release()
            return outcome("current", start, start)
        try:
            self._back_up()
        except TENANT_ERRORS as exc:
            self._release()
            return outcome(
                "failed",
                start,
                start,
                error=f"{self.path}: cannot write the backup {self.backup.name} next to it: {exc}. "
                "Nothing was changed; free disk space or make the folder writable.",
            )
        try:
            applied = run_plan(self.conn, self.migrations, self.plan, self.store, one_transaction=True)
            if in_transaction(self.conn):
                if not self.exclusive:
                    self.backup.unlink()  # from here the COMMIT alone decides: all or nothing
                self.conn.execute("COMMIT")
        except BaseException as exc:
            note = self._undo(start)
            if isinstance(exc, StepFailure):
                return outcome(
                    "failed",
                    start,
                    start,
                    step=exc.step,
                    statement=exc.statement,
                    location=exc.location,
                    error=exc.error + note,
                    code=exc.code,
                )
            if isinstance(exc, TENANT_ERRORS):
                return outcome("failed", start, start, error=f"{self.path}: {exc}" + note)
            exc.add_note(f"tenant {self.path}: interrupted while migrating;{note or ' rolled back'}")
            raise
        database.remove_with_side_files(self.backup)
        return outcome("migrated", start, self.target, applied)

    def _lock(self) -> int:
        """Take the tenant's write lock and read its version under it (plan recomputed)."""
        if self.exclusive:
            self.conn.execute("PRAGMA locking_mode = EXCLUSIVE")
            self.conn.execute("BEGIN EXCLUSIVE")
        else:
            self.conn.execute("BEGIN IMMEDIATE")
        start = self.store.read(self.conn)
        self.plan = self.migrations.plan(start, self.target)
        if self.exclusive:
            self.conn.execute("COMMIT")  # the exclusive locking mode keeps the lock
        return start

    def _lock_error(self, exc: BaseException) -> str:
        text = str(database.explain(self.path, exc) if isinstance(exc, sqlite3.Error) else exc)
        if self.exclusive and "locked" in str(exc):
            text += (
                " A step of this plan runs outside a transaction, so the migrator needs the tenant "
                "to itself: close the app's connections to it (WAL mode included) and run again."
            )
        return text

    def _release(self) -> None:
        with suppress(sqlite3.Error):
            if in_transaction(self.conn):
                self.conn.execute("ROLLBACK")

    def _back_up(self) -> None:
        if self.exclusive:  # this connection holds the lock: the backup reads through it
            database.backup_to(self.conn, self.backup, self.timeout)
            return
        # a second connection reads the committed state; our write lock keeps it from changing
        with closing(sqlite3.connect(self.path, timeout=self.timeout)) as source:
            database.backup_to(source, self.backup, self.timeout)

    def _undo(self, start: int) -> str:
        """Put the tenant back at ``start``; return what to add to the error."""
        if in_transaction(self.conn) and not self.exclusive:
            try:
                self.conn.execute("ROLLBACK")  # nothing was committed: SQLite undoes it all
                database.remove_with_side_files(self.backup)
                return ""
            except sqlite3.Error:
                pass
        if not self.backup.exists():
            return ""  # the COMMIT itself failed: SQLite rolled it back
        backup = backup_path(self.path)
        try:
            if self.backup != backup:
                os.replace(self.backup, backup)  # a kill from here on: the next run restores it
            self._release()
            target = self.conn if _usable(self.conn) else database.connect(self.path, timeout=self.timeout)
            try:
                database.restore_into(backup, target, self.timeout)
            finally:
                if target is not self.conn:
                    target.close()
            database.remove_with_side_files(backup)
        except TENANT_ERRORS as exc:
            return (
                f" (restoring its backup failed too: {exc}; it is kept at {backup}, and recover() or "
                "the next migrate() puts it back)"
            )
        return f" (restored from its backup to version {start})"


def _usable(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1").fetchone()
    except sqlite3.Error:
        return False
    return True


# -- after a worker died ---------------------------------------------------------------------


def interrupted_outcome(
    tenant: str, path: Path, migrations: MigrationSet, target: int, store: VersionStore, timeout: float
) -> TenantOutcome:
    """What a tenant whose worker died is now, read from disk (its backup restored first)."""

    def failed(version: int, error: str, recovered: bool = False) -> TenantOutcome:
        return TenantOutcome(tenant, str(path), "failed", version, version, recovered=recovered, error=error)

    try:
        undone = restore(path, timeout)
    except TENANT_ERRORS as exc:
        return failed(
            -1,
            f"interrupted: the worker process died while migrating it, and its backup cannot be "
            f"put back now ({exc}); it is kept at {backup_path(path)} for recover() or the next migrate()",
        )
    try:
        with closing(database.connect(path, timeout=timeout)) as conn:
            version = store.read(conn)
    except TENANT_ERRORS as exc:
        return failed(-1, f"interrupted: {exc}")
    if undone:
        return failed(
            version,
            f"interrupted: the worker process died while migrating it; it was put back at version "
            f"{version} (nothing lost), and the next migrate() retries it",
            recovered=True,
        )
    if version == target:
        return TenantOutcome(tenant, str(path), "current", version, version)
    return failed(
        version,
        "not migrated: the worker process died before it got to this tenant; the next migrate() migrates it",
    )


# -- worker processes -----------------------------------------------------------------------

_WORKER_STATE: list[tuple[MigrationSet, int, VersionStore, float]] = []


def _init_worker(
    migrations: MigrationSet, target: int, store: VersionStore, timeout: float, parent: int
) -> None:
    die_with_parent(parent)
    _WORKER_STATE[:] = [(migrations, target, store, timeout)]


def _migrate_in_worker(tenant: str, path: Path) -> TenantOutcome:
    migrations, target, store, timeout = _WORKER_STATE[0]
    return migrate_tenant(tenant, path, migrations, target, store, timeout)


def migrate_many(
    tenants: Sequence[tuple[str, Path]],
    migrations: MigrationSet,
    target: int,
    store: VersionStore,
    workers: int = 1,
    timeout: float = 5.0,
    lock_timeout: float | None = None,
    progress: Progress | None = None,
) -> list[TenantOutcome]:
    """Migrate every tenant, in this process or spread over ``workers`` processes.

    Holds the lock of each fleet directory for the whole run (waiting up to ``lock_timeout``,
    default ``timeout``, for another run to finish, then raising ``FleetBusyError``). ``progress``
    is told of each tenant done (:mod:`pytest_tenantdb.progress`).
    """
    directories = [path.parent for _, path in tenants]
    with (
        fleet_lock(directories, timeout if lock_timeout is None else lock_timeout),
        counting(progress, "migrating", len(tenants)) as tick,
    ):
        if workers <= 1 or len(tenants) < 2:
            outcomes = []
            for tenant, path in tenants:
                outcomes.append(migrate_tenant(tenant, path, migrations, target, store, timeout))
                tick(tenant)
            return outcomes
        return _in_workers(tenants, migrations, target, store, workers, timeout, tick)


def recover_many(
    paths: Sequence[Path], timeout: float = 5.0, lock_timeout: float | None = None
) -> list[Path]:
    """Undo what interrupted runs left on ``paths`` (under the fleet lock); return those undone."""
    undone: list[Path] = []
    stuck: list[str] = []
    with fleet_lock([p.parent for p in paths], timeout if lock_timeout is None else lock_timeout):
        for path in paths:
            try:
                if restore(path, timeout):
                    undone.append(path)
            except TENANT_ERRORS as exc:
                stuck.append(f"{path}: {exc}")
    if stuck:
        raise TenantDatabaseError(
            f"{len(stuck)} backup(s) could not be put back; they are kept, run recover() again once "
            "the app's lock is released or there is space:\n  " + "\n  ".join(stuck)
        )
    return undone


def _in_workers(
    tenants: Sequence[tuple[str, Path]],
    migrations: MigrationSet,
    target: int,
    store: VersionStore,
    workers: int,
    timeout: float,
    tick: Callable[[str], None],
) -> list[TenantOutcome]:
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    done: dict[int, TenantOutcome] = {}
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(migrations, target, store, timeout, os.getpid()),
    ) as pool:
        futures: list[Future[TenantOutcome]] = [pool.submit(_migrate_in_worker, t, p) for t, p in tenants]
        try:
            for index, future in enumerate(futures):
                with suppress(BrokenProcessPool):
                    done[index] = future.result()
                tick(tenants[index][0])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # workers finish (or undo) their tenant
            raise
    # every worker has exited: what a dead one held is read from disk, its backup restored
    return [
        done[i] if i in done else interrupted_outcome(t, p, migrations, target, store, timeout)
        for i, (t, p) in enumerate(tenants)
    ]
