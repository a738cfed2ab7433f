"""Opening, copying, backing up and restoring SQLite files, with errors that say what to do."""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from pytest_tenantdb import recording
from pytest_tenantdb.errors import TenantDatabaseError

SIDE_FILES = ("-journal", "-wal", "-shm")
_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


def explain(path: Path, exc: sqlite3.Error) -> TenantDatabaseError:
    """Turn a sqlite3 error about a whole file into an actionable TenantDatabaseError."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        hint = "another connection holds a lock on it; close it or raise busy_timeout in [tool.tenantdb]"
    elif "not a database" in text or "malformed" in text or "corrupt" in text:
        hint = "the file is corrupted or is not SQLite; restore it from a backup or leave it out"
    elif "unable to open" in text:
        hint = "the file or its folder is missing or not readable"
    elif "disk is full" in text or "disk I/O" in text or "readonly" in text:
        hint = "the disk is full or the file or its folder is not writable; free space or fix permissions"
    else:
        hint = "check the file"
    return TenantDatabaseError(f"{path}: {text} ({hint}).")


def connect(path: Path, *, timeout: float = 5.0, must_exist: bool = True) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit) and check it is SQLite."""
    if must_exist and not path.is_file():
        raise TenantDatabaseError(f"{path}: no such database file.")
    try:
        with recording.harness():  # the harness's own connection: --tenantdb-record skips it
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    except sqlite3.Error as exc:
        raise explain(path, exc) from exc
    try:
        conn.execute("PRAGMA schema_version").fetchone()
    except sqlite3.Error as exc:
        conn.close()
        raise explain(path, exc) from exc
    return conn


def is_empty_file(path: Path) -> bool:
    """True when ``path`` has no bytes and no WAL: SQLite would take it for a new, empty database."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size == 0 and not (wal.exists() and wal.stat().st_size > 0)


def unique_sibling(path: Path, suffix: str) -> Path:
    """A name next to ``path`` that no other process or thread picks (for write-then-rename)."""
    return path.with_name(f"{path.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def remove_with_side_files(path: Path) -> None:
    """Delete a file this process owns (a backup, a partial copy) and SQLite's files next to it."""
    for name in (path, *(path.with_name(path.name + s) for s in SIDE_FILES)):
        name.unlink(missing_ok=True)


def copy_file(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` atomically: ``dst`` is either absent/old or complete."""
    partial = unique_sibling(dst, ".partial")
    try:
        shutil.copyfile(src, partial)
        os.replace(partial, dst)
    finally:
        partial.unlink(missing_ok=True)


def remove_side_files(path: Path) -> None:
    """Delete SQLite's journal/WAL files next to ``path`` (only for files nobody else has open)."""
    for suffix in SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.unlink()


def _bounded(timeout: float) -> Callable[[int, int, int], None]:
    """A backup progress callback that gives up once the other side stayed locked for ``timeout``
    (Python's backup loop would otherwise retry a busy database for ever)."""
    deadline = time.monotonic() + timeout

    def progress(status: int, remaining: int, total: int) -> None:
        if status in _BUSY and time.monotonic() > deadline:
            raise sqlite3.OperationalError("database is locked")

    return progress


def backup_to(source: sqlite3.Connection, dst: Path, timeout: float = 5.0) -> None:
    """Write what ``source`` sees (its WAL's committed pages included) to ``dst`` atomically.

    SQLite's backup API reads through the connection, so rows still in a ``-wal`` file are
    copied, which a plain file copy would miss. ``dst`` is written under a unique name and then
    renamed: a run killed half-way never leaves a half-written backup under the real name.
    """
    partial = unique_sibling(dst, ".partial")
    try:
        out = sqlite3.connect(partial)
        try:
            source.backup(out, progress=_bounded(timeout), sleep=0.02)
        finally:
            out.close()
        os.replace(partial, dst)
    finally:
        remove_with_side_files(partial)


def open_backup(backup: Path) -> sqlite3.Connection:
    """A read-only connection to a backup written by :func:`backup_to` (nothing is written next to
    it: a backup is one complete file that never changes)."""
    return sqlite3.connect(f"{backup.resolve().as_uri()}?immutable=1", uri=True)


def restore_into(backup: Path, target: sqlite3.Connection, timeout: float = 5.0) -> None:
    """Put the content of ``backup`` back into the database ``target`` is connected to.

    The pages are written through SQLite in one transaction (journaled, so a kill half-way is
    rolled back and the restore can simply run again), in place: the file keeps its inode, owner
    and mode, and connections other processes hold stay valid.
    """
    source = open_backup(backup)
    try:
        source.backup(target, progress=_bounded(timeout), sleep=0.02)
    finally:
        source.close()
