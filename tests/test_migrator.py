"""Fleet migration: per-tenant isolation, byte-identical restore, resume, workers, killed workers."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError
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
        assert (outcome.status == "migrated") == (version == 4), (outcome, version)
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
