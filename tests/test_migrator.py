"""Fleet migration: per-tenant isolation, byte-identical restore, resume, workers, killed workers."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError, FleetBusyError, FleetNotWritableError, TenantDatabaseError
from pytest_tenantdb.fleet.locking import LOCK_NAME, fleet_lock
from pytest_tenantdb.fleet.migrator import backup_path, migrate_tenant, spare_path
from pytest_tenantdb.fleet.report import FleetMigrationError
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import UserVersionStore
from tests.conftest import ROOT, SIMPLE, columns, make_builder

Writer = Callable[..., Path]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _content(path: Path) -> tuple[int, list[str]]:
    """What a tenant holds (version, schema, rows): equal after a restore, which writes the pages
    back in place through SQLite (the schema cookie moves on, so open connections re-read it)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0], list(conn.iterdump())
    finally:
        conn.close()


def test_migrate_brings_every_tenant_to_head(tmp_path: Path, example_migrations: MigrationSet) -> None:
    fleet = make_builder(tmp_path, example_migrations)(count=60, versions={1: 0.3, 5: 0.3, "head": 0.4})
    report = fleet.migrate()
    assert report.ok and report.totals() == {"migrated": 36, "current": 24, "failed": 0}
    assert fleet.versions() == {11: 60}
    assert report.by_start_version()[5] == {"migrated": 18, "current": 0, "failed": 0}
    migrated = report.migrated[0]
    assert migrated.end == 11 and migrated.applied[-1] == "0011_contract_users_name"
    assert not list((tmp_path / "tenants").rglob("*.tenantdb-backup"))
    assert "name" not in columns(fleet[0].path, "users")
    again = fleet.migrate()
    assert again.totals() == {"migrated": 0, "current": 60, "failed": 0}
    assert "60 already current" in str(again) and again.to_dict()["totals"]["current"] == 60


def test_failing_tenant_is_restored_byte_identical_and_others_carry_on(
    tmp_path: Path, example_migrations: MigrationSet
) -> None:
    fleet = make_builder(tmp_path, example_migrations)(count=20, versions={6: 1.0}, sizes="small")
    victim = fleet[3]
    with victim.connect() as conn:  # drift only this tenant has: a hand-made view on notes
        conn.execute("CREATE VIEW recent_notes AS SELECT id FROM notes")
    before = _sha(victim.path)
    report = fleet.migrate()
    assert report.totals() == {"migrated": 19, "current": 0, "failed": 1}
    failure = report.failed[0]
    assert failure.tenant == victim.id and failure.step == "0008_rebuild_notes"
    assert failure.statement == "ALTER TABLE notes_new RENAME TO notes;"
    assert failure.location is not None and failure.location.endswith("0008_rebuild_notes.sql:18")
    assert "error in view recent_notes" in (failure.error or "")
    assert _sha(victim.path) == before
    assert not backup_path(victim.path).exists()
    described = failure.describe()
    assert victim.id in described and "0008_rebuild_notes" in described and "RENAME TO notes" in described
    with pytest.raises(FleetMigrationError, match=victim.id):
        report.raise_on_failure()
    # fix the drift: the next run resumes only what is pending
    with victim.connect() as conn:
        conn.execute("DROP VIEW recent_notes")
    resumed = fleet.migrate()
    assert resumed.totals() == {"migrated": 1, "current": 19, "failed": 0}
    assert resumed.migrated[0].tenant == victim.id


def test_python_step_failure_names_the_last_statement(tmp_path: Path, write_migrations: Writer) -> None:
    files = dict(SIMPLE)
    files["0004_backfill.py"] = textwrap.dedent(
        """
        def up(conn):
            conn.execute("UPDATE users SET name = 'x'")
            conn.execute("INSERT INTO posts (user_id, title) VALUES (1, NULL)")
        """
    )
    migrations = MigrationSet.from_path(write_migrations(files))
    fleet = make_builder(tmp_path, migrations)(versions={3: 2}, sizes="small")
    report = fleet.migrate()
    assert len(report.failed) == 2
    failure = report.failed[0]
    assert failure.step == "0004_backfill" and "NOT NULL constraint failed: posts.title" in (
        failure.error or ""
    )
    assert failure.statement is not None and failure.statement.startswith("INSERT INTO posts")
    assert failure.location is not None and "0004_backfill.py:" in failure.location
    assert fleet.versions() == {3: 2}


def test_corrupted_locked_and_unknown_version_tenants(
    tmp_path: Path, simple_migrations: MigrationSet
) -> None:
    fleet = make_builder(tmp_path, simple_migrations, timeout=0.05)(versions={1: 4}, sizes="small")
    corrupted, locked, future, healthy = fleet
    corrupted.path.write_bytes(b"this is not a database" * 200)
    with future.connect() as conn:
        conn.execute("PRAGMA user_version = 42")
    holder = sqlite3.connect(locked.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        report = fleet.migrate()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    by_id = {o.tenant: o for o in report.outcomes}
    assert by_id[healthy.id].status == "migrated"
    assert "not a database" in (by_id[corrupted.id].error or "") and "corrupted" in (
        by_id[corrupted.id].error or ""
    )
    assert "locked" in (by_id[locked.id].error or "")
    assert "version 42" in (by_id[future.id].error or "")
    assert locked.current_version() == 1  # untouched, retried next run
    assert fleet.migrate().totals()["migrated"] == 1


def test_downgrade_runs_down_sections(tmp_path: Path, simple_migrations: MigrationSet) -> None:
    fleet = make_builder(tmp_path, simple_migrations)(versions={2: 2})
    report = fleet.migrate(to=1)
    assert report.ok and fleet.versions() == {1: 2}
    assert columns(fleet[0].path, "users") == ["id", "email"]
    up = fleet.migrate(to="head")
    assert up.ok and fleet.versions() == {3: 2}
    down = fleet.migrate(to=2)  # step 3 has no down section
    assert not down.ok and "no down section" in (down.failed[0].error or "")
    with pytest.raises(ConfigError, match="at least 1"):
        fleet.migrate(workers=0)


def test_table_versioning_end_to_end(tmp_path: Path, simple_migrations: MigrationSet) -> None:
    fleet = make_builder(tmp_path, simple_migrations, versioning="table")(versions={1: 1, 2: 1})
    assert fleet.migrate(to=2).ok
    with fleet[0].connect() as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1, 2]
    assert fleet.migrate(to=1).ok
    with fleet[0].connect() as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == [1]


def test_steps_outside_a_transaction(tmp_path: Path, write_migrations: Writer) -> None:
    files = {
        "0001_a.sql": "CREATE TABLE a (x);",
        "0002_vacuum.sql": "-- tenantdb: no-transaction\nVACUUM;",
        "0003_bad.sql": "-- tenantdb: no-transaction\nCREATE TABLE b (x);\nINSERT INTO nope VALUES (1);",
    }
    migrations = MigrationSet.from_path(write_migrations(files))
    fleet = make_builder(tmp_path, migrations)(versions={1: 1})
    assert fleet.migrate(to=2).ok
    fleet2 = make_builder(tmp_path / "2", migrations)(versions={1: 1})
    before = _content(fleet2[0].path)
    report = fleet2.migrate()
    assert report.failed[0].step == "0003_bad" and _content(fleet2[0].path) == before
    assert "restored from its backup to version 1" in (report.failed[0].error or "")


def test_foreign_key_check_statement_fails_the_step(tmp_path: Path, write_migrations: Writer) -> None:
    files = dict(SIMPLE)
    files["0004_orphan.sql"] = (
        "INSERT INTO posts (user_id, title) VALUES (999, 'orphan');\nPRAGMA foreign_key_check;"
    )
    fleet = make_builder(tmp_path, MigrationSet.from_path(write_migrations(files)))(
        versions={3: 1}, sizes="empty"
    )
    failure = fleet.migrate().failed[0]
    assert (
        "foreign key violation" in (failure.error or "") and failure.statement == "PRAGMA foreign_key_check;"
    )


def test_two_workers_give_the_same_outcome_as_one(tmp_path: Path, example_migrations: MigrationSet) -> None:
    mix = {1: 0.25, 6: 0.25, 9: 0.25, "head": 0.25}
    one = make_builder(tmp_path / "a", example_migrations, seed=2)(count=40, versions=mix).migrate(workers=1)
    two = make_builder(tmp_path / "b", example_migrations, seed=2)(count=40, versions=mix).migrate(workers=2)
    assert two.workers == 2
    assert [(o.tenant, o.status, o.start, o.end) for o in one.outcomes] == [
        (o.tenant, o.status, o.start, o.end) for o in two.outcomes
    ]


KILL_STEP = """
import os, signal, sqlite3
from pathlib import Path

def up(conn):
    db = Path(conn.execute("PRAGMA database_list").fetchone()[2])
    conn.execute("UPDATE users SET name = 'half-done'")
    flag = db.with_suffix(".kill")
    if flag.exists():
        flag.unlink()
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_worker_killed_mid_step_reports_each_tenant_by_what_is_on_disk(
    tmp_path: Path, write_migrations: Writer
) -> None:
    files = dict(SIMPLE)
    files["0004_kill.py"] = KILL_STEP
    migrations = MigrationSet.from_path(write_migrations(files))
    fleet = make_builder(tmp_path, migrations, workers=2)(count=16, versions={1: 1.0}, sizes="small")
    victim = fleet[5]
    original = _content(victim.path)
    victim.path.with_suffix(".kill").touch()
    report = fleet.migrate()
    by_id = {o.tenant: o for o in report.outcomes}
    dead = by_id[victim.id]
    assert dead.status == "failed" and dead.recovered
    assert (dead.error or "").startswith("interrupted: the worker process died while migrating it")
    # SQLite rolled the killed run back as a whole, and the parent dropped its spare backup
    assert _content(victim.path) == original
    assert not backup_path(victim.path).exists() and not spare_path(victim.path).exists()
    with victim.connect() as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # every outcome says what is on disk: migrated tenants (the dead worker's too) are not "failed"
    assert report.migrated
    for tenant in fleet:
        outcome, version = by_id[tenant.id], tenant.current_version()
        # a result lost with the dead worker's pool is read from disk: at the target, "current"
        assert (outcome.status in ("migrated", "current")) == (version == 4), (outcome, version)
        if outcome.status == "failed":
            assert version == 1 and (outcome.error or "").startswith(("interrupted", "not migrated"))
    again = fleet.migrate()
    assert again.ok and fleet.versions() == {4: 16}
    outcome = next(o for o in again.outcomes if o.tenant == victim.id)
    assert outcome.start == 1 and outcome.status == "migrated"


def test_process_killed_mid_step_then_recover(tmp_path: Path, write_migrations: Writer) -> None:
    files = dict(SIMPLE)
    files["0004_slow.py"] = textwrap.dedent(
        """
        import time
        from pathlib import Path

        def up(conn):
            db = Path(conn.execute("PRAGMA database_list").fetchone()[2])
            conn.execute("UPDATE users SET name = 'half-done'")
            db.with_suffix(".started").touch()
            time.sleep(60)
        """
    )
    migrations_dir = write_migrations(files)
    migrations = MigrationSet.from_path(migrations_dir)
    fleet = make_builder(tmp_path, migrations)(count=1, versions={1: 1.0}, sizes="small")
    tenant = fleet[0]
    original = _content(tenant.path)
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from pytest_tenantdb.fleet.migrator import migrate_tenant
        from pytest_tenantdb.migrations import MigrationSet
        from pytest_tenantdb.versioning import UserVersionStore
        migrate_tenant("t", Path({str(tenant.path)!r}), MigrationSet.from_path({str(migrations_dir)!r}), 4, UserVersionStore())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    started = tenant.path.with_suffix(".started")
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert started.exists(), "the migration never reached the slow step"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # the steps shared one transaction, which SQLite rolls back: the spare backup is not needed
    assert spare_path(tenant.path).exists() and not backup_path(tenant.path).exists()
    assert tenant.current_version() == 1 and _content(tenant.path) == original
    assert fleet.recover() == [tenant.id]
    assert _content(tenant.path) == original and not spare_path(tenant.path).exists()
    assert fleet.recover() == []
    outcome = migrate_tenant(tenant.id, tenant.path, migrations, 3, UserVersionStore())
    assert outcome.status == "migrated" and not outcome.recovered


# -- faults: the tenant's own data, the app next to the migrator, the machine around it -------

FAILING = {
    **SIMPLE,
    "0004_bad.sql": "INSERT INTO posts (user_id, title) VALUES (1, 'x');\nINSERT INTO nope VALUES (1);",
}


def _wal_with_rows_in_wal(path: Path, rows: int = 100) -> sqlite3.Connection:
    """Switch ``path`` to WAL and commit ``rows`` that stay in the ``-wal`` file: the returned app
    connection is kept open (no checkpoint on close) and never checkpoints."""
    app = sqlite3.connect(path, isolation_level=None, timeout=5)
    app.execute("PRAGMA journal_mode = WAL")
    app.execute("PRAGMA wal_autocheckpoint = 0")
    app.execute("CREATE TABLE app_rows (id INTEGER PRIMARY KEY, v TEXT)")
    for n in range(rows):
        app.execute("INSERT INTO app_rows (v) VALUES (?)", (f"row {n}",))
    assert path.with_name(path.name + "-wal").stat().st_size > 0
    return app


def _count(path: Path, table: str = "app_rows") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_wal_rows_survive_a_failing_step_and_a_successful_run(
    tmp_path: Path, write_migrations: Writer
) -> None:
    failing = MigrationSet.from_path(write_migrations(FAILING, "failing"))
    fleet = make_builder(tmp_path, failing)(count=2, versions={3: 1.0}, sizes="small")
    apps = [_wal_with_rows_in_wal(t.path) for t in fleet]
    try:
        report = fleet.migrate()
        assert len(report.failed) == 2 and report.failed[0].step == "0004_bad"
        assert [_count(t.path) for t in fleet] == [100, 100]
        good = make_builder(tmp_path / "good", MigrationSet.from_path(write_migrations(SIMPLE, "good")))
        ok_fleet = good(count=2, versions={1: 1.0}, sizes="small")
        ok_apps = [_wal_with_rows_in_wal(t.path) for t in ok_fleet]
        try:
            assert ok_fleet.migrate().ok and [_count(t.path) for t in ok_fleet] == [100, 100]
        finally:
            for app in ok_apps:
                app.close()
    finally:
        for app in apps:
            app.close()
    assert [_count(t.path) for t in fleet] == [100, 100] and fleet.versions() == {3: 2}


NO_TRANSACTION_APP_WRITE = """
import sqlite3
from pathlib import Path

TRANSACTIONAL = False

def up(conn):
    db = Path(conn.execute("PRAGMA database_list").fetchone()[2])
    app = sqlite3.connect(db, isolation_level=None, timeout=0.05)
    try:
        app.execute("INSERT INTO users (email) VALUES ('app-commit@example.org')")
        db.with_suffix(".app-committed").touch()  # the app was told: committed
    except sqlite3.OperationalError:
        db.with_suffix(".app-refused").touch()  # the app was told: locked, try again
    finally:
        app.close()
    conn.execute("INSERT INTO nope VALUES (1)")
"""


def test_an_app_commit_is_never_undone_by_a_restore(tmp_path: Path, write_migrations: Writer) -> None:
    """An app writes while the migrator runs a step outside a transaction; the step then fails and
    the tenant is restored. The app's commit must either be refused (locked) or survive."""
    files = {**SIMPLE, "0004_app_writes.py": NO_TRANSACTION_APP_WRITE}
    fleet = make_builder(tmp_path, MigrationSet.from_path(write_migrations(files)))(
        versions={3: 1}, sizes="small"
    )
    tenant = fleet[0]
    report = fleet.migrate()
    assert report.failed[0].step == "0004_app_writes" and tenant.current_version() == 3
    with tenant.connect() as conn:
        kept = conn.execute("SELECT count(*) FROM users WHERE email = 'app-commit@example.org'").fetchone()[0]
    committed = tenant.path.with_suffix(".app-committed").exists()
    assert committed == bool(kept), "an acknowledged app commit was undone by the restore"
    assert tenant.path.with_suffix(".app-refused").exists()  # the migrator held the write lock


def test_recovery_never_deletes_a_journal_another_connection_is_using(
    tmp_path: Path, simple_migrations: MigrationSet
) -> None:
    fleet = make_builder(tmp_path, simple_migrations, timeout=0.05)(versions={1: 1}, sizes="small")
    tenant = fleet[0]
    shutil.copyfile(tenant.path, backup_path(tenant.path))  # what an interrupted run left
    app = sqlite3.connect(tenant.path, isolation_level=None)
    app.execute("BEGIN IMMEDIATE")
    app.execute("DELETE FROM users")  # uncommitted: its undo is in the -journal
    journal = tenant.path.with_name(tenant.path.name + "-journal")
    assert journal.exists()
    try:
        with pytest.raises(TenantDatabaseError, match="locked"):
            fleet.recover()
        report = fleet.migrate()
        assert "cannot be put back" in (report.failed[0].error or "")
        assert journal.exists()
    finally:
        app.execute("ROLLBACK")
        app.close()
    assert _count(tenant.path, "users") > 0 and backup_path(tenant.path).exists()
    assert fleet.recover() == [tenant.id] and fleet.migrate().ok


def test_a_second_migration_waits_for_the_first_then_reports_plainly(
    tmp_path: Path, simple_migrations: MigrationSet
) -> None:
    fleet = make_builder(tmp_path, simple_migrations)(versions={1: 2}, sizes="small")
    with fleet_lock([fleet[0].path.parent], timeout=1):  # a migration in another process
        with pytest.raises(FleetBusyError, match="another migration or recovery"):
            fleet.migrate(lock_timeout=0.05)
        with pytest.raises(FleetBusyError):
            fleet.recover(lock_timeout=0.05)
    assert fleet.versions() == {1: 2} and fleet.migrate().ok


def test_a_fleet_folder_that_cannot_be_written_stops_cleanly(
    tmp_path: Path, simple_migrations: MigrationSet
) -> None:
    fleet = make_builder(tmp_path, simple_migrations)(versions={1: 2}, sizes="small")
    (fleet[0].path.parent / LOCK_NAME).mkdir()  # the lock file cannot be created
    with pytest.raises(FleetNotWritableError, match="nothing was changed"):
        fleet.migrate()
    assert fleet.versions() == {1: 2}


@pytest.mark.skipif(os.geteuid() == 0, reason="file modes do not restrict root")
def test_read_only_folder_is_a_per_tenant_failure(tmp_path: Path, simple_migrations: MigrationSet) -> None:
    fleet = make_builder(tmp_path, simple_migrations)(versions={1: 2}, sizes="small")
    folder = fleet[0].path.parent
    fleet.migrate(to=1)  # creates the lock file while the folder is writable
    folder.chmod(0o555)
    try:
        report = fleet.migrate()
    finally:
        folder.chmod(0o755)
    assert len(report.failed) == 2 and "Nothing was changed" in (report.failed[0].error or "")
    assert fleet.versions() == {1: 2}


DISK_FULL = """
import json, resource, signal, sys
from pathlib import Path
from pytest_tenantdb.fleet.fleet import Fleet, Tenant
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import UserVersionStore

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
limit, migrations, *paths = sys.argv[1:]
resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
tenants = [Tenant(Path(p).stem, Path(p), 1) for p in paths]
report = Fleet(tenants, MigrationSet.from_path(migrations), UserVersionStore()).migrate()
print(json.dumps([[o.tenant, o.status, o.error] for o in report.outcomes]))
"""


def test_disk_full_is_a_per_tenant_failure_and_the_rest_carry_on(
    tmp_path: Path, write_migrations: Writer
) -> None:
    migrations_dir = write_migrations(SIMPLE)
    builder = make_builder(tmp_path, MigrationSet.from_path(migrations_dir))
    fleet = builder(count=3, versions={1: 1.0}, sizes={"empty": 2, "large": 1})
    big = max(fleet, key=lambda t: t.path.stat().st_size)
    limit = (max(t.path.stat().st_size for t in fleet if t is not big) + big.path.stat().st_size) // 2
    assert big.path.stat().st_size > limit  # its backup cannot be written; the others' can
    before = _content(big.path)
    args = [sys.executable, "-c", DISK_FULL, str(limit), str(migrations_dir), *(str(t.path) for t in fleet)]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    outcomes = {tenant: (status, error) for tenant, status, error in json.loads(done.stdout)}
    assert outcomes[big.id][0] == "failed" and "Nothing was changed" in outcomes[big.id][1]
    assert "File too large" in outcomes[big.id][1] or "full" in outcomes[big.id][1]
    assert [outcomes[t.id][0] for t in fleet if t is not big] == ["migrated", "migrated"]
    assert _content(big.path) == before and not list(big.path.parent.glob("*.partial*"))


INTERRUPTING_STEPS = {
    "keyboard": "def up(conn):\n    conn.execute(\"UPDATE users SET name = 'half'\")\n    raise KeyboardInterrupt\n",
    "exit": "import sys\n\ndef up(conn):\n    conn.execute(\"UPDATE users SET name = 'half'\")\n    sys.exit(3)\n",
    "close": "def up(conn):\n    conn.execute(\"UPDATE users SET name = 'half'\")\n    conn.close()\n",
    "commit": "def up(conn):\n    conn.execute(\"UPDATE users SET name = 'half'\")\n    conn.commit()\n"
    '    conn.execute("INSERT INTO nope VALUES (1)")\n',
}


@pytest.mark.parametrize("kind", sorted(INTERRUPTING_STEPS))
def test_python_steps_that_interrupt_close_or_commit_leave_the_tenant_whole(
    tmp_path: Path, write_migrations: Writer, kind: str
) -> None:
    files = {**SIMPLE, "0004_rude.py": INTERRUPTING_STEPS[kind]}
    fleet = make_builder(tmp_path, MigrationSet.from_path(write_migrations(files)))(
        count=2, versions={1: 1.0}, sizes="small"
    )
    before = [_content(t.path) for t in fleet]
    if kind == "keyboard":
        with pytest.raises(KeyboardInterrupt) as info:
            fleet.migrate()
        assert any("interrupted while migrating" in note for note in getattr(info.value, "__notes__", []))
    else:
        report = fleet.migrate()
        assert [o.status for o in report.outcomes] == ["failed", "failed"]
        assert report.failed[0].step == "0004_rude"
    assert [_content(t.path) for t in fleet] == before  # version 1 and no 'half' anywhere
    assert not list(fleet[0].path.parent.glob("*.sqlite3.*"))  # no backup, spare or partial left


def test_an_empty_file_is_not_a_tenant_database(tmp_path: Path, simple_migrations: MigrationSet) -> None:
    fleet = make_builder(tmp_path, simple_migrations)(versions={0: 1, 1: 1}, sizes="empty")
    assert all(t.path.stat().st_size > 0 for t in fleet)  # version 0 tenants are real SQLite files
    empty = fleet[0]
    empty.path.write_bytes(b"")
    report = fleet.migrate()
    failure = next(o for o in report.outcomes if o.tenant == empty.id)
    assert failure.status == "failed" and "empty file (0 bytes), not a tenant database" in (
        failure.error or ""
    )
    assert empty.path.stat().st_size == 0 and len(report.migrated) == 1


def test_restore_keeps_the_file_its_mode_and_owner(tmp_path: Path, simple_migrations: MigrationSet) -> None:
    fleet = make_builder(tmp_path, simple_migrations)(versions={1: 1}, sizes="small")
    tenant = fleet[0]
    before = _content(tenant.path)
    shutil.copyfile(tenant.path, backup_path(tenant.path))
    with tenant.connect() as conn:
        conn.execute("DELETE FROM users")
    tenant.path.chmod(0o600)
    if os.geteuid() == 0:
        os.chown(tenant.path, 4321, 4321)
    inode = tenant.path.stat().st_ino
    assert fleet.recover() == [tenant.id]
    stat = tenant.path.stat()
    assert _content(tenant.path) == before and stat.st_ino == inode and stat.st_mode & 0o777 == 0o600
    if os.geteuid() == 0:
        assert (stat.st_uid, stat.st_gid) == (4321, 4321)


SLOW_STEP = """
import os, time
from pathlib import Path

def up(conn):
    db = Path(conn.execute("PRAGMA database_list").fetchone()[2])
    db.with_suffix(f".worker-{os.getpid()}").touch()
    time.sleep(120)
"""

PARENT = """
import sys
from pathlib import Path
from pytest_tenantdb.fleet.fleet import Fleet, Tenant
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import UserVersionStore

migrations, *paths = sys.argv[1:]
tenants = [Tenant(Path(p).stem, Path(p), 1) for p in paths]
Fleet(tenants, MigrationSet.from_path(migrations), UserVersionStore(), workers=2).migrate()
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie waiting for a reaper runs no code


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_end_with_their_parent(tmp_path: Path, write_migrations: Writer) -> None:
    migrations_dir = write_migrations({**SIMPLE, "0004_slow.py": SLOW_STEP})
    fleet = make_builder(tmp_path, MigrationSet.from_path(migrations_dir))(count=2, versions={1: 1.0})
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(migrations_dir), *(str(t.path) for t in fleet)], cwd=ROOT
    )
    folder = fleet[0].path.parent
    deadline = time.monotonic() + 60
    while len(list(folder.glob("*.worker-*"))) < 2 and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.02)
    workers = [int(p.suffix.split("-")[1]) for p in folder.glob("*.worker-*")]
    assert len(workers) == 2, "the workers never reached the slow step"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert all(_gone(pid) for pid in workers), "workers ran on after their parent was killed"
    assert sorted(fleet.recover()) == sorted(t.id for t in fleet)
    assert fleet.versions() == {1: 2}
