"""Fault-injection campaign for the fleet migrator: ``python -m benchmarks.faults --trials 300``.

Each trial builds a small fleet (tenants at mixed versions, WAL or rollback-journal, some with a
step that fails for them), then hurts a migration of it: SIGKILL at a random moment (1 or 2
workers), disk full (``RLIMIT_FSIZE`` in the migrating process), a read-only folder, another
connection holding a tenant's write lock, an app committing rows meanwhile, two runs at once, a
corrupted file. Then it recovers (``Fleet.recover()``) and checks every tenant against a
reference: at its start version with exactly its original rows, or at the target with exactly
the rows a fault-free migration gives; every app commit that was acknowledged still there.

Figures: trials, tenants checked, tenants lost or corrupted (must be 0), tracebacks (must be 0).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import sqlite3
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pytest_tenantdb.errors import FleetBusyError
from pytest_tenantdb.fleet.fleet import Fleet, FleetBuilder, Tenant
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import UserVersionStore

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example" / "migrations"
KINDS = ("kill", "disk-full", "read-only", "held-lock", "app-writes", "concurrent", "corrupt")
TENANTS = 6
FAIL_MARKER = "fault_fail_here"  # a tenant holding this table fails at the last step
FAILING_STEP = f"""
def up(conn):
    conn.execute("UPDATE users SET display_name = display_name || ''")
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = '{FAIL_MARKER}'").fetchone():
        raise RuntimeError("this tenant fails here (fault campaign)")
"""
NO_TRANSACTION_STEP = "-- tenantdb: no-transaction\nVACUUM;\n"
_CHILD_EXIT = {"ok": 0, "traceback": 1, "busy": 3}


@dataclass
class Totals:
    """What the campaign saw; ``lost`` and ``tracebacks`` must stay 0."""

    trials: int = 0
    tenants: int = 0
    lost: int = 0
    tracebacks: int = 0
    skipped: int = 0
    busy: int = 0
    killed: int = 0
    app_commits: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"trials: {self.trials} ({', '.join(f'{k} {n}' for k, n in sorted(self.kinds.items()))})",
            f"tenants checked: {self.tenants}; outcomes {dict(sorted(self.outcomes.items()))}",
            f"migrations killed with SIGKILL mid-run: {self.killed}",
            f"acknowledged app commits checked: {self.app_commits}",
            f"second runs told plainly that the fleet was busy: {self.busy}",
            f"skipped: {self.skipped} (read-only folders do not restrict root)"
            if self.skipped
            else "skipped: 0",
            f"tenants lost or corrupted: {self.lost}",
            f"tracebacks: {self.tracebacks}",
        ]


# -- the fleets ------------------------------------------------------------------------------


class _Setup:
    """Migration sets, pristine tenant files and reference results, built once per campaign."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.sets = {
            "transactional": self._migrations("tx", False),
            "no-transaction": self._migrations("nt", True),
        }
        self.pristine: dict[tuple[str, str], list[tuple[Path, int]]] = {}
        self.reference: dict[tuple[str, str, str], tuple[int, list[str]] | None] = {}

    def _migrations(self, name: str, no_transaction: bool) -> MigrationSet:
        folder = self.work / f"migrations-{name}"
        shutil.copytree(EXAMPLE, folder)
        if no_transaction:
            (folder / "0012_vacuum.sql").write_text(NO_TRANSACTION_STEP)
        (folder / "0013_sometimes_fails.py").write_text(FAILING_STEP)
        return MigrationSet.from_path(folder)

    def fleet_files(self, plan: str, journal: str) -> list[tuple[Path, int]]:
        """Pristine tenants for a plan and journal mode: (file, start version)."""
        key = (plan, journal)
        if key not in self.pristine:
            migrations = self.sets[plan]
            cache = TemplateCache(self.work / f"cache-{plan}", migrations, UserVersionStore())
            fleet = FleetBuilder(self.work / f"pristine-{plan}-{journal}", cache, seed=7)(
                TENANTS, {1: 2, 5: 2, 9: 2}, sizes={"small": TENANTS}
            )
            for n, tenant in enumerate(fleet):
                conn = sqlite3.connect(tenant.path, isolation_level=None)
                conn.execute(f"PRAGMA journal_mode = {journal}")
                conn.execute("CREATE TABLE app_log (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
                if n % 3 == 2:
                    conn.execute(f"CREATE TABLE {FAIL_MARKER} (x)")
                conn.close()  # the last connection checkpoints: each pristine tenant is one file
            self.pristine[key] = [(t.path, t.version) for t in fleet]
            self._references(plan, journal, fleet)
        return self.pristine[key]

    def _references(self, plan: str, journal: str, fleet: Fleet) -> None:
        copies = self.work / f"reference-{plan}-{journal}"
        copies.mkdir()
        tenants = []
        for tenant in fleet:
            self.reference[(plan, journal, tenant.path.name + "@start")] = snapshot(tenant.path)
            shutil.copyfile(tenant.path, copies / tenant.path.name)
            tenants.append(Tenant(tenant.id, copies / tenant.path.name, tenant.version))
        report = Fleet(tenants, self.sets[plan], UserVersionStore()).migrate()
        for outcome, tenant in zip(report.outcomes, fleet, strict=True):
            done = outcome.status == "migrated"
            self.reference[(plan, journal, tenant.path.name + "@target")] = (
                snapshot(Path(outcome.path)) if done else None
            )


def snapshot(path: Path) -> tuple[int, list[str]]:
    """A tenant's version and content (app_log apart: the app may add rows during a trial)."""
    conn = sqlite3.connect(path)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        return version, [line for line in conn.iterdump() if "app_log" not in line]
    finally:
        conn.close()


# -- one trial -------------------------------------------------------------------------------


@dataclass
class _Trial:
    kind: str
    plan: str
    journal: str
    workers: int
    folder: Path
    tenants: list[Tenant]
    migrations: MigrationSet
    setup: _Setup
    rng: random.Random
    acknowledged: dict[str, list[int]] = field(default_factory=dict)
    app_commits_checked: int = 0

    def fleet(self, timeout: float = 2.0) -> Fleet:
        return Fleet(self.tenants, self.migrations, UserVersionStore(), workers=self.workers, timeout=timeout)


def _child(trial: _Trial, result: Path, limit: int | None, timeout: float) -> None:
    """The migrating process (forked): report what it saw in ``result``, exit 0 / 1 / 3."""
    code = _CHILD_EXIT["ok"]
    try:
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by signal
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        report = trial.fleet(timeout).migrate(lock_timeout=0.2)
        text = json.dumps([[o.tenant, o.status, o.error] for o in report.outcomes])
    except FleetBusyError as exc:
        code, text = _CHILD_EXIT["busy"], json.dumps(str(exc))
    except BaseException:
        code, text = _CHILD_EXIT["traceback"], json.dumps(traceback.format_exc())
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # room to write the result
    result.write_text(text)
    os._exit(code)


def _start(
    trial: _Trial, name: str, limit: int | None = None, timeout: float = 2.0
) -> tuple[multiprocessing.Process, Path]:
    result = trial.folder.parent / f"{trial.folder.name}-{name}.json"
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_child, args=(trial, result, limit, timeout))
    process.start()
    return process, result


def _app_writer(trial: _Trial, stop: threading.Event) -> None:
    """An app committing rows to random tenants; a row counts once its COMMIT returned."""
    n = 0
    while not stop.is_set():
        tenant = trial.rng.choice(trial.tenants)
        n += 1
        try:
            conn = sqlite3.connect(tenant.path, isolation_level=None, timeout=1.0)
            try:
                conn.execute("INSERT INTO app_log (id, note) VALUES (?, 'app')", (n,))
            finally:
                conn.close()
        except sqlite3.Error:
            continue  # refused (locked, or a table not there yet): the app was told, nothing owed
        trial.acknowledged.setdefault(tenant.path.name, []).append(n)


def run_trial(trial: _Trial, totals: Totals, duration: float) -> None:
    """Hurt one migration of ``trial``'s fleet, recover, and check every tenant."""
    children: list[tuple[multiprocessing.Process, Path]] = []
    held: list[sqlite3.Connection] = []
    stop = threading.Event()
    writer: threading.Thread | None = None
    corrupt: dict[str, bytes] = {}
    try:
        if trial.kind == "read-only":
            if os.geteuid() == 0:
                totals.skipped += 1
                return
            (trial.folder / ".tenantdb-migrate.lock").touch()
            trial.folder.chmod(0o555)
        if trial.kind == "held-lock":
            for tenant in trial.rng.sample(trial.tenants, 2):
                conn = sqlite3.connect(tenant.path, isolation_level=None)
                conn.execute("BEGIN IMMEDIATE")
                held.append(conn)
        if trial.kind == "corrupt":
            victim = trial.rng.choice(trial.tenants)
            data = bytearray(victim.path.read_bytes())
            how = trial.rng.choice(["garbage", "truncate", "empty", "header"])
            if how == "garbage":
                at = trial.rng.randrange(len(data))
                data[at : at + 512] = os.urandom(len(data[at : at + 512]))
            elif how == "truncate":
                data = data[: trial.rng.randrange(1, len(data))]
            elif how == "empty":
                data = bytearray()
            else:
                data[:16] = b"not a database!!"
            victim.path.write_bytes(bytes(data))
            corrupt[victim.path.name] = bytes(data)
        limit = None
        if trial.kind == "disk-full":
            biggest = max(t.path.stat().st_size for t in trial.tenants)
            limit = trial.rng.randrange(0, 3 * biggest)
        children.append(_start(trial, "a", limit, timeout=0.3 if trial.kind == "held-lock" else 2.0))
        if trial.kind == "app-writes":  # started after the fork: a child forked with threads can deadlock
            writer = threading.Thread(target=_app_writer, args=(trial, stop), daemon=True)
            writer.start()
        if trial.kind == "concurrent":
            time.sleep(trial.rng.uniform(0, duration / 2))
            children.append(_start(trial, "b"))
        if trial.kind in ("kill", "app-writes", "concurrent") and trial.rng.random() < 0.8:
            time.sleep(trial.rng.uniform(0, duration))
            if trial.plan == "no-transaction":
                # a killed no-transaction plan leaves the tenant half-migrated until recover()
                # puts its backup back, undoing what an app writes to it in between (documented)
                stop.set()
                if writer is not None:
                    writer.join()
            victim_process = trial.rng.choice(children)[0]
            if victim_process.pid is not None:
                os.kill(victim_process.pid, signal.SIGKILL)
        for process, _ in children:
            process.join(120)
            if process.is_alive():  # never expected: a hung migration counts as a traceback
                process.kill()
                process.join()
                totals.tracebacks += 1
                totals.problems.append(f"{trial.kind}: the migration hung for 120s")
        stop.set()
        if writer is not None:
            writer.join()
    finally:
        for conn in held:
            conn.execute("ROLLBACK")
            conn.close()
        if trial.kind == "read-only" and os.geteuid() != 0:
            trial.folder.chmod(0o755)
    for process, result in children:
        if process.exitcode == -signal.SIGKILL:
            totals.killed += 1
        if process.exitcode == _CHILD_EXIT["traceback"]:
            totals.tracebacks += 1
            said = json.loads(result.read_text()) if result.exists() else "(no result written)"
            totals.problems.append(f"{trial.kind}: {said}")
        elif process.exitcode == _CHILD_EXIT["busy"]:
            totals.busy += 1
        elif process.exitcode == _CHILD_EXIT["ok"]:
            for _, status, _ in json.loads(result.read_text()):
                totals.outcomes[status] += 1
    try:
        trial.fleet().recover(lock_timeout=60)  # waits for workers of a killed run to be gone
    except Exception:
        totals.tracebacks += 1
        totals.problems.append(f"{trial.kind}: recover() raised\n{traceback.format_exc()}")
    _check(trial, totals, corrupt)
    totals.app_commits += trial.app_commits_checked


def _check(trial: _Trial, totals: Totals, corrupt: dict[str, bytes]) -> None:
    setup = trial.setup
    for tenant in trial.tenants:
        totals.tenants += 1
        name = tenant.path.name
        if name in corrupt:  # a corrupted tenant must be left exactly as it was found
            if tenant.path.read_bytes() != corrupt[name] and not _healthy(tenant.path):
                totals.lost += 1
                totals.problems.append(f"{trial.kind}: corrupted tenant {name} was changed")
            continue
        problem = _verify(tenant, setup, trial)
        if problem:
            totals.lost += 1
            totals.problems.append(
                f"{trial.kind} ({trial.plan}, {trial.journal}, {trial.workers}w): {name}: {problem}"
            )


def _healthy(path: Path) -> bool:
    try:
        conn = sqlite3.connect(path)
        try:
            return conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def _verify(tenant: Tenant, setup: _Setup, trial: _Trial) -> str | None:
    if not _healthy(tenant.path):
        return "integrity_check fails"
    leftovers = [p.name for p in tenant.path.parent.glob(tenant.path.name + ".*")]
    if leftovers:
        return f"left behind: {leftovers}"
    now = snapshot(tenant.path)
    start = setup.reference[(trial.plan, trial.journal, tenant.path.name + "@start")]
    target = setup.reference[(trial.plan, trial.journal, tenant.path.name + "@target")]
    if now != start and now != target:
        return f"at version {now[0]} with content matching neither its start nor the reference"
    conn = sqlite3.connect(tenant.path)
    try:
        present = {row[0] for row in conn.execute("SELECT id FROM app_log")}
    finally:
        conn.close()
    wanted = trial.acknowledged.get(tenant.path.name, [])
    trial.app_commits_checked += len(wanted)
    missing = [n for n in wanted if n not in present]
    return f"acknowledged app commits lost: {missing}" if missing else None


# -- the campaign ----------------------------------------------------------------------------


def run_campaign(
    trials: int, seed: int = 0, work: Path | None = None, progress: Callable[[int], None] | None = None
) -> Totals:
    """Run ``trials`` trials (kinds, plans, journal modes and workers cycled, moments random)."""
    rng = random.Random(seed)
    totals = Totals()
    with tempfile.TemporaryDirectory(prefix="tenantdb-faults-", dir=work) as tmp:
        base = Path(tmp)
        setup = _Setup(base)
        durations: dict[tuple[str, str, int], float] = {}
        for n in range(trials):
            kind = KINDS[n % len(KINDS)]
            # 7 kinds x 8 configurations, coprime: any 8 trials cover every configuration, any 56
            # every kind in every configuration
            plan = ("transactional", "no-transaction")[n % 2]
            journal = ("wal", "delete")[(n // 2) % 2]
            workers = 1 + (n // 4) % 2
            migrations = setup.sets[plan]
            folder = base / f"trial-{n:04d}"
            folder.mkdir()
            tenants = []
            for path, version in setup.fleet_files(plan, journal):
                shutil.copyfile(path, folder / path.name)
                tenants.append(Tenant(path.stem, folder / path.name, version))
            trial = _Trial(
                kind, plan, journal, workers, folder, tenants, migrations, setup, random.Random(rng.random())
            )
            key = (plan, journal, workers)
            if key not in durations:  # how long a fault-free run takes: kills land inside it
                durations[key] = _calibrate(setup, plan, journal, workers, base / f"calibrate-{n}")
            run_trial(trial, totals, durations[key])
            totals.trials += 1
            totals.kinds[kind] += 1
            shutil.rmtree(folder, ignore_errors=True)
            if progress is not None:
                progress(n + 1)
    return totals


def _calibrate(setup: _Setup, plan: str, journal: str, workers: int, folder: Path) -> float:
    folder.mkdir()
    tenants = []
    for path, version in setup.fleet_files(plan, journal):
        shutil.copyfile(path, folder / path.name)
        tenants.append(Tenant(path.stem, folder / path.name, version))
    started = time.perf_counter()
    Fleet(tenants, setup.sets[plan], UserVersionStore(), workers=workers).migrate()
    elapsed = time.perf_counter() - started
    shutil.rmtree(folder, ignore_errors=True)
    return max(elapsed, 0.01) * 1.3


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=280)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    totals = run_campaign(args.trials, args.seed)
    for line in totals.lines():
        print(line)
    print(f"time: {time.perf_counter() - started:.0f}s")
    for problem in totals.problems[:20]:
        print("PROBLEM:", problem)
    return 0 if totals.lost == 0 and totals.tracebacks == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
