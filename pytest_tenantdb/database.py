"""Opening, copying and restoring SQLite files, with errors that say what to do."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

from pytest_tenantdb.errors import TenantDatabaseError

SIDE_FILES = ("-journal", "-wal", "-shm")


def explain(path: Path, exc: sqlite3.Error) -> TenantDatabaseError:
    """Turn a sqlite3 error about a whole file into an actionable TenantDatabaseError."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        hint = "another connection holds a lock on it; close it or raise tenantdb_busy_timeout"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        hint = "the file is corrupted or is not SQLite; restore it from a backup or leave it out"
    elif "unable to open" in text:
        hint = "the file or its folder is missing or not readable"
    else:
        hint = "check the file"
    return TenantDatabaseError(f"{path}: {text} ({hint}).")


def connect(path: Path, *, timeout: float = 5.0, must_exist: bool = True) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit) and check it is SQLite."""
    if must_exist and not path.is_file():
        raise TenantDatabaseError(f"{path}: no such database file.")
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise explain(path, exc) from exc
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise explain(path, exc) from exc
    return conn


def copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically: ``dst`` is either absent/old or complete."""
    partial = dst.with_name(dst.name + ".partial")
    shutil.copyfile(src, partial)
    os.replace(partial, dst)


def remove_side_files(path: Path) -> None:
    """Delete SQLite's journal/WAL files next to ``path`` (before restoring a backup over it)."""
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.unlink()
