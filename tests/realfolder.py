"""A folder of "real" tenant files with every kind of trouble, and a fingerprint of its files.

Used by test_realfleet.py, test_scan.py and test_fleet_query.py: the folder holds tenants at
mixed versions of the example, two drifted alike, one drifted otherwise, one at an unknown
version, WAL tenants (committed rows still in the -wal, with and without -shm), a hot journal, an
empty file, a file that is not SQLite, a corrupted one, symbolic links in and out of the folder,
side files and a file of another name.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_tenantdb.migrations import MigrationSet
from tests.conftest import make_builder

#: file -> what ``tenantdb scan`` says of it
EXPECTED = {
    "t-head-1.db": ("ok", 11),
    "t-head-2.db": ("ok", 11),
    "t-head-3.db": ("ok", 11),
    "t-prev-1.db": ("ok", 10),
    "t-prev-2.db": ("ok", 10),
    "t-old-1.db": ("ok", 1),
    "drift-a1.db": ("drift", 11),
    "drift-a2.db": ("drift", 11),
    "drift-b.db": ("drift", 11),
    "future.db": ("unknown_version", None),
    "wal-shm.db": ("ok", 11),
    "wal-noshm.db": ("ok", 11),
    "wal-clean.db": ("ok", 11),
    "hot.db": ("hot_journal", None),
    "zero.db": ("empty", None),
    "text.db": ("not_sqlite", None),
    "corrupt.db": ("corrupt", None),
    "link-out.db": ("symlink", None),
    "link-in.db": ("symlink", None),
}


def state(folder: Path) -> dict[str, tuple[str, int, int]]:
    """Every entry of ``folder`` (side files too; links not followed): content hash, mtime, size."""
    found = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        info = entry.stat(follow_symlinks=False)
        if entry.is_symlink():
            digest = "->" + os.readlink(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            digest = "dir:" + repr(state(Path(entry.path)))
        else:
            digest = hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()
        found[entry.name] = (digest, info.st_mtime_ns, info.st_size)
    return found


@dataclass
class RealFolder:
    folder: Path
    outside: Path  # a tenant file out of the folder (a symbolic link points at it)


def _wal_tenant(template: Path, target: Path, *, keep_shm: bool) -> None:
    """A WAL tenant whose last committed row is only in its -wal (and -shm, if kept)."""
    scratch = target.parent.parent / f"scratch-{target.name}"
    scratch.mkdir()
    work = scratch / "w.db"
    shutil.copyfile(template, work)
    conn = sqlite3.connect(work, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    conn.execute("INSERT INTO tags (label, color) VALUES ('only-in-wal', 'red')")
    for suffix in ("", "-wal", "-shm"):  # copied while the connection holds the WAL open
        if suffix != "-shm" or keep_shm:
            shutil.copyfile(work.with_name(work.name + suffix), target.with_name(target.name + suffix))
    conn.close()
    shutil.rmtree(scratch)


def _hot_journal(template: Path, target: Path) -> None:
    """A rollback-journal tenant with the -journal of a write that never committed."""
    scratch = target.parent.parent / "scratch-hot"
    scratch.mkdir()
    work = scratch / "h.db"
    shutil.copyfile(template, work)
    conn = sqlite3.connect(work, isolation_level=None)
    conn.execute("PRAGMA cache_size = 1")
    conn.execute("BEGIN")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) "
        "INSERT INTO tags (label, color) SELECT 'x' || i, hex(randomblob(200)) FROM n"
    )
    shutil.copyfile(work, target)
    shutil.copyfile(work.with_name("h.db-journal"), target.with_name(target.name + "-journal"))
    conn.execute("ROLLBACK")
    conn.close()
    shutil.rmtree(scratch)


def make_real_folder(tmp_path: Path, migrations: MigrationSet) -> RealFolder:
    folder = tmp_path / "real"
    folder.mkdir()
    fleet = make_builder(tmp_path / "build", migrations).build(
        6, {11: 3, 10: 2, 1: 1}, sizes="small", seed=5, ids=[f"s{n}" for n in range(6)]
    )
    by_version = sorted(fleet, key=lambda t: (-t.version, t.id))
    names = ["t-head-1", "t-head-2", "t-head-3", "t-prev-1", "t-prev-2", "t-old-1"]
    for name, tenant in zip(names, by_version, strict=True):
        shutil.copyfile(tenant.path, folder / f"{name}.db")
    head = by_version[0].path
    for name, change in (
        ("drift-a1", "ALTER TABLE tags DROP COLUMN color"),
        ("drift-a2", "ALTER TABLE tags DROP COLUMN color"),
        ("drift-b", "CREATE INDEX tags_by_color ON tags (color)"),
        ("future", "PRAGMA user_version = 99"),
    ):
        shutil.copyfile(head, folder / f"{name}.db")
        conn = sqlite3.connect(folder / f"{name}.db")
        conn.execute(change)
        conn.commit()
        conn.close()
    _wal_tenant(head, folder / "wal-shm.db", keep_shm=True)
    _wal_tenant(head, folder / "wal-noshm.db", keep_shm=False)
    shutil.copyfile(head, folder / "wal-clean.db")
    conn = sqlite3.connect(folder / "wal-clean.db")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()  # checkpointed and its -wal removed: a WAL header, no side file
    _hot_journal(head, folder / "hot.db")
    (folder / "zero.db").write_bytes(b"")
    (folder / "text.db").write_text("name,plan\nacme,pro\n" * 50)
    data = bytearray(head.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # page 1's b-tree (sqlite_master) destroyed
    (folder / "corrupt.db").write_bytes(bytes(data))
    (tmp_path / "elsewhere").mkdir()
    outside = tmp_path / "elsewhere" / "outside.db"
    shutil.copyfile(head, outside)
    (folder / "link-out.db").symlink_to(outside)
    (folder / "link-in.db").symlink_to(folder / "t-head-1.db")
    (folder / "notes.txt").write_text("not a tenant")
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.db").write_bytes(b"")
    return RealFolder(folder, outside)


@contextmanager
def held_lock(path: Path) -> Iterator[None]:
    """Another connection holds ``path`` exclusively (a writer mid-commit) while the block runs."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()
