"""Fleets copied from a folder of real tenant files: the originals are never written."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from pytest_tenantdb.errors import ConfigError
from pytest_tenantdb.fleet import directory
from pytest_tenantdb.fleet.directory import UnreadableTenant, list_tenant_files, open_readonly
from pytest_tenantdb.fleet.fleet import Fleet
from pytest_tenantdb.fleet.query import query_files
from pytest_tenantdb.fleet.scan import scan_directory
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.versioning import UserVersionStore
from tests.conftest import make_builder
from tests.realfolder import EXPECTED, held_lock, make_real_folder, state


def test_every_operation_leaves_the_originals_byte_and_mtime_identical(
    tmp_path: Path, example_migrations: MigrationSet
) -> None:
    real = make_real_folder(tmp_path, example_migrations)
    before = state(real.folder)
    outside = state(real.outside.parent)
    builder = make_builder(tmp_path, example_migrations, timeout=0.2)

    with held_lock(real.folder / "t-prev-2.db"):  # a writer holds it mid-commit
        locked = state(real.folder)
        fleet = builder.from_directory(real.folder)  # copy
        assert state(real.folder) == locked
    assert state(real.folder) == before
    assert {p.name: p.status for p in fleet.skipped} == {
        "link-in.db": "symlink",
        "link-out.db": "symlink",
        "t-prev-2.db": "locked",
    }
    copied = {t.id for t in fleet}
    assert copied == {Path(n).stem for n in EXPECTED} - {"link-in", "link-out", "t-prev-2"}
    assert all(t.source is not None and t.source.parent == real.folder for t in fleet)
    assert all(real.folder not in t.path.parents for t in fleet)

    report = fleet.migrate()  # migrate the copies
    assert state(real.folder) == before
    outcomes = {o.tenant: o for o in report.outcomes}
    assert {t for t, o in outcomes.items() if o.status == "failed"} == {"zero", "text", "future"}
    # the corrupted copy records head in its header, so the migrator has nothing to run on it;
    # scan (below) is what tells it is corrupted
    assert outcomes["corrupt"].status == "current"
    for name in ("t-old-1", "t-prev-1"):
        assert outcomes[name].status == "migrated", outcomes[name]
    for name in ("t-head-1", "wal-shm", "wal-noshm", "wal-clean", "hot"):
        assert outcomes[name].status == "current"

    templates = builder.templates
    scanned = scan_directory(real.folder, templates)  # scan
    assert state(real.folder) == before
    assert {Path(t.path).name: t.status for t in scanned.tenants} == {n: s for n, (s, _) in EXPECTED.items()}

    counts = fleet.query("SELECT count(*) FROM users")  # query the copies
    assert counts.ok or {t.tenant for t in counts.failed} <= {"zero", "text", "corrupt"}
    originals = query_files(  # and the originals themselves
        [(p.stem, p) for p in sorted(real.folder.glob("*.db"))], "SELECT count(*) FROM tags"
    )
    assert state(real.folder) == before
    assert state(real.outside.parent) == outside
    statuses = {t.tenant: t.status for t in originals.tenants}
    assert statuses["zero"] == "empty" and statuses["text"] == "not_sqlite"
    assert statuses["corrupt"] == "corrupt" and statuses["hot"] == "hot_journal"
    assert statuses["wal-noshm"] == statuses["wal-shm"] == "ok"


def test_copies_hold_the_rows_still_in_the_wal(tmp_path: Path, example_migrations: MigrationSet) -> None:
    real = make_real_folder(tmp_path, example_migrations)
    fleet = make_builder(tmp_path, example_migrations).from_directory(real.folder, "wal-*.db")
    assert sorted(t.id for t in fleet) == ["wal-clean", "wal-noshm", "wal-shm"]
    for tenant in fleet:
        assert tenant.version == 11
        assert not tenant.path.with_name(tenant.path.name + "-wal").exists()  # one complete file
    labels = fleet.query("SELECT count(*) FROM tags WHERE label = 'only-in-wal'").scalars()
    assert labels == {"wal-clean": 0, "wal-noshm": 1, "wal-shm": 1}


def test_a_hot_journal_is_copied_with_the_tenant_and_rolled_back_there(
    tmp_path: Path, example_migrations: MigrationSet
) -> None:
    real = make_real_folder(tmp_path, example_migrations)
    fleet = make_builder(tmp_path, example_migrations).from_directory(real.folder, "hot.db")
    (hot,) = fleet
    # reading the copy's version opened it read-write: SQLite rolled its journal back there
    assert not hot.path.with_name(hot.path.name + "-journal").exists()
    assert hot.version == hot.current_version() == 11
    assert (real.folder / "hot.db-journal").exists()  # the original keeps its own
    with hot.connect() as conn:
        assert conn.execute("SELECT count(*) FROM tags WHERE label LIKE 'x%'").fetchone() == (0,)


@pytest.mark.parametrize("shape", ["rollback", "wal+shm", "wal", "wal-clean"])
def test_open_readonly_sees_committed_rows_and_writes_nothing(tmp_path: Path, shape: str) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    work = tmp_path / "work.db"
    conn = sqlite3.connect(work, isolation_level=None)
    if shape != "rollback":
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    for suffix in ("", "-wal", "-shm"):
        side = work.with_name(work.name + suffix)
        if side.exists() and (suffix != "-shm" or shape == "wal+shm") and shape != "wal-clean":
            shutil.copyfile(side, folder / f"t.db{suffix}")
    conn.close()
    if shape == "wal-clean":
        shutil.copyfile(work, folder / "t.db")  # checkpointed on close: header says WAL, no -wal
    before = state(folder)
    with open_readonly(folder / "t.db") as ro:
        assert ro.execute("SELECT x FROM t").fetchall() == [(1,)]
        with pytest.raises(sqlite3.OperationalError):
            ro.execute("INSERT INTO t VALUES (2)")
    assert state(folder) == before


def test_unreadable_files_are_outcomes(
    tmp_path: Path, example_migrations: MigrationSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = make_real_folder(tmp_path, example_migrations)
    secret = real.folder / "t-head-2.db"
    real_open = open

    def guarded(file: object, *args: object, **kwargs: object) -> object:
        if Path(str(file)) == secret:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(directory, "open", guarded, raising=False)
    with pytest.raises(UnreadableTenant) as caught, open_readonly(secret):
        pass
    assert caught.value.status == "unreadable" and "Permission denied" in caught.value.detail
    fleet = make_builder(tmp_path, example_migrations).from_directory(real.folder)
    assert {p.name: p.status for p in fleet.skipped}["t-head-2.db"] == "unreadable"
    scanned = scan_directory(real.folder, make_builder(tmp_path / "b", example_migrations).templates)
    assert {Path(t.path).name: t.status for t in scanned.tenants}["t-head-2.db"] == "unreadable"


@pytest.mark.skipif(os.geteuid() == 0, reason="file modes do not restrict root")
def test_a_file_without_read_permission_is_unreadable(tmp_path: Path) -> None:  # pragma: no cover
    path = tmp_path / "t.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    path.chmod(0)
    with pytest.raises(UnreadableTenant, match="Permission denied"), open_readonly(path):
        pass


def test_listing_skips_side_files_links_and_sub_folders(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("a.db", "a.db-wal", "a.db-shm", "a.db-journal", "b.db.tenantdb-backup", "c.txt"):
        (folder / name).write_bytes(b"")
    (folder / "d.db").mkdir()
    (folder / "loop.db").symlink_to(folder / "loop.db")
    listing = list_tenant_files(folder)
    assert [p.name for p in listing.files] == ["a.db"]
    assert [(p.name, p.status) for p in listing.problems] == [("loop.db", "symlink")]
    assert "out of the folder" in listing.problems[0].detail
    assert listing.ignored == 6
    assert [p.name for p in list_tenant_files(folder, "*").files] == ["a.db", "c.txt"]
    with pytest.raises(ConfigError, match="is not a folder"):
        list_tenant_files(folder / "a.db")


def test_fleet_from_directory_outside_pytest(tmp_path: Path, example_migrations: MigrationSet) -> None:
    real = make_real_folder(tmp_path, example_migrations)
    fleet = Fleet.from_directory(
        real.folder,
        example_migrations,
        workdir=tmp_path / "copies",
        pattern="t-*.db",
        store=UserVersionStore(),
    )
    assert sorted(t.id for t in fleet) == [
        "t-head-1",
        "t-head-2",
        "t-head-3",
        "t-old-1",
        "t-prev-1",
        "t-prev-2",
    ]
    assert fleet.created_versions() == {11: 3, 10: 2, 1: 1}
    assert fleet.migrate().ok
    with pytest.raises(ConfigError, match="new or empty folder"):
        Fleet.from_directory(real.folder, example_migrations, workdir=tmp_path / "copies")
    with pytest.raises(ConfigError, match="inside the folder of originals"):
        Fleet.from_directory(real.folder, example_migrations, workdir=real.folder / "copies")
    with pytest.raises(ConfigError, match="does not exist"):
        make_builder(tmp_path, example_migrations).from_directory(tmp_path / "missing")


def test_unsafe_names_and_duplicate_ids_are_skipped(tmp_path: Path, example_migrations: MigrationSet) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    template = make_builder(tmp_path, example_migrations).templates.schema_template(11)
    for name in ("acme.db", "acme.sqlite", "bad name.db", ".hidden.db"):
        shutil.copyfile(template, folder / name)
    fleet = make_builder(tmp_path, example_migrations).from_directory(folder, "*")
    assert [t.id for t in fleet] == ["acme"]
    assert {p.name: p.status for p in fleet.skipped} == {
        ".hidden.db": "unsafe_name",
        "acme.sqlite": "duplicate",
        "bad name.db": "unsafe_name",
    }


def test_many_files_one_connection_at_a_time(tmp_path: Path, example_migrations: MigrationSet) -> None:
    """Thousands of files: every one an outcome, no descriptor left open (not timed here)."""
    folder = tmp_path / "many"
    folder.mkdir()
    template = make_builder(tmp_path, example_migrations).templates.schema_template(11)
    data = template.read_bytes()
    for n in range(1500):
        (folder / f"t{n:05d}.db").write_bytes(data if n % 3 else b"")
    for n in range(3000):
        (folder / f"other{n}.txt").write_bytes(b"")
    fds = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None
    scanned = scan_directory(folder, make_builder(tmp_path / "b", example_migrations).templates)
    assert scanned.totals()["ok"] == 1000 and scanned.totals()["empty"] == 500
    assert scanned.ignored == 3000
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) <= fds + 2


def test_an_alembic_state_the_history_cannot_place_is_an_outcome(tmp_path: Path) -> None:
    """A real Alembic tenant on one branch only: copied (version -1), failed by migrate, scanned
    as unknown_version; from_snapshots keeps raising for it (tests/test_sources.py)."""
    from alembic import command

    from tests.test_sources import ALEMBIC, _alembic_config

    migrations = MigrationSet.from_path(ALEMBIC / "alembic.ini")
    folder = tmp_path / "real"
    folder.mkdir()
    command.upgrade(_alembic_config(folder / "branch_a.db"), "2b3c4d5e6f7a")  # type: ignore[arg-type]
    before = state(folder)
    builder = make_builder(tmp_path, migrations, "auto")
    fleet = builder.from_directory(folder)
    assert [(t.id, t.version) for t in fleet] == [("branch_a", -1)]
    (failed,) = fleet.migrate().failed
    assert "not a state of the history" in (failed.error or "")
    (scanned,) = scan_directory(folder, builder.templates).tenants
    assert scanned.status == "unknown_version" and "merge point" in scanned.detail
    assert state(folder) == before
