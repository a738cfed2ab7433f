"""A folder of real tenant files: listing it, opening its files without writing them, copying them.

Every function here only *reads* the originals: no byte and no modification time of a tenant
file or of its ``-wal`` / ``-shm`` / ``-journal`` changes, and no file appears next to them.
SQLite's plain read-only mode is not enough for that: on a WAL database ``mode=ro`` still writes
(and creates) the ``-shm`` file, and even creates an empty ``-wal``. So a file is opened by what
its header and side files say (:func:`open_readonly`):

- rollback-journal database: ``mode=ro`` (shared locks only, so a writer's lock is seen: *locked*);
- WAL database with no ``-wal`` content: ``immutable=1`` (everything is in the main file);
- WAL database with ``-wal`` and ``-shm``: ``mode=ro&readonly_shm=1`` (the WAL is read, the
  ``-shm`` is opened read-only);
- WAL database with a ``-wal`` but no ``-shm``: the main file and its ``-wal`` are copied byte
  for byte to a private folder and opened there (SQLite rebuilds the index from the WAL).

Each problem of a file (not SQLite, empty, unreadable, locked, corrupted, a symbolic link) is a
:class:`FileProblem` with a status and a message that says what to do, never an exception.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pytest_tenantdb import recording

HEADER = b"SQLite format 3\x00"
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
#: Files the fleet migrator and this package leave next to a tenant: never tenants themselves.
OWN_SUFFIXES = (".tenantdb-backup", ".tenantdb-spare", ".partial", ".lock", ".building")

#: Statuses of a file that cannot be read as a tenant (besides the scan's own ``ok``, ``drift``...).
PROBLEMS = ("symlink", "unreadable", "empty", "not_sqlite", "locked", "hot_journal", "corrupt")

_HINTS = {
    "symlink": "symbolic links are not followed; copy the tenant file into the folder",
    "unreadable": "the file cannot be read (permissions?); fix its mode or run as its owner",
    "empty": "an empty file (0 bytes) is no tenant database; remove it or restore it from a backup",
    "not_sqlite": "the file does not start with SQLite's header; leave it out of the folder",
    "locked": "another process holds a write lock on it; retry when the app is idle, or raise the timeout",
    "hot_journal": "a -journal of an interrupted write is next to it; open it once with the app "
    "(read-write) so SQLite rolls it back, then retry",
    "corrupt": "the file is corrupted; restore it from a backup",
}


@dataclass(frozen=True)
class FileProblem:
    """A file of the folder that cannot be read as a tenant: ``status`` (one of ``PROBLEMS``)
    and ``detail`` (what SQLite or the system said, and what to do)."""

    name: str
    path: Path
    status: str
    detail: str

    def describe(self) -> str:
        return f"{self.name}: {self.status}: {self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "path": str(self.path), "status": self.status, "detail": self.detail}


class UnreadableTenant(Exception):
    """Raised inside this module when a file cannot be opened; carries the status and detail."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def _problem(status: str, what: str) -> UnreadableTenant:
    return UnreadableTenant(status, f"{what} ({_HINTS[status]})")


@dataclass(frozen=True)
class Listing:
    """What a folder holds: ``files`` to read as tenants (sorted by name), ``problems`` (symbolic
    links, entries that cannot be examined) and how many names were ``ignored`` (not matching the
    pattern, side files, sub-folders)."""

    folder: Path
    pattern: str
    files: tuple[Path, ...]
    problems: tuple[FileProblem, ...]
    ignored: int


def list_tenant_files(folder: Path, pattern: str = "*.db") -> Listing:
    """The files of ``folder`` (not its sub-folders) matching ``pattern`` (a glob on the name).

    Linear in the number of entries: one ``scandir`` pass, one compiled pattern, no ``stat`` of
    files that do not match. Symbolic links are never followed (a link out of the folder would
    read or copy a file the folder does not hold): each matching one is a ``symlink`` problem.
    ``-wal``, ``-shm``, ``-journal`` and the migrator's own files are never tenants.
    """
    from pytest_tenantdb.errors import ConfigError

    if not folder.is_dir():
        raise ConfigError(f"{folder}: is not a folder; name the folder that holds the tenant files")
    matches = re.compile(fnmatch.translate(pattern)).match
    files: list[Path] = []
    problems: list[FileProblem] = []
    ignored = 0
    try:
        entries = os.scandir(folder)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot list the folder ({exc.strerror}); fix its permissions") from None
    with entries:
        for entry in entries:
            name = entry.name
            if not matches(name) or name.endswith(SIDE_SUFFIXES) or ".tenantdb-" in name:
                ignored += 1
                continue
            path = folder / name
            try:
                if entry.is_symlink():
                    target = os.readlink(path)
                    inside = _inside(folder, path)
                    where = "inside the folder" if inside else "out of the folder"
                    problems.append(
                        FileProblem(
                            name,
                            path,
                            "symlink",
                            f"symbolic link to {target} ({where}), not followed; "
                            "copy the tenant file into the folder to include it",
                        )
                    )
                    continue
                if not entry.is_file(follow_symlinks=False):
                    ignored += 1
                    continue
            except OSError as exc:
                problems.append(FileProblem(name, path, "unreadable", f"{exc.strerror or exc}"))
                continue
            if name.endswith(OWN_SUFFIXES):
                ignored += 1
                continue
            files.append(path)
    files.sort(key=lambda p: p.name)
    problems.sort(key=lambda p: p.name)
    return Listing(folder, pattern, tuple(files), tuple(problems), ignored)


def _inside(folder: Path, link: Path) -> bool:
    try:
        return link.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def tenant_id_of(path: Path) -> str:
    """A tenant's id: its file name without the last suffix (``acme.db`` -> ``acme``)."""
    return path.stem if path.suffix else path.name


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def read_header(path: Path) -> bytes:
    """The first 100 bytes of ``path``; raises :class:`UnreadableTenant` for a file that cannot be
    read, is empty or is not SQLite."""
    try:
        with open(path, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise _problem("unreadable", "not a regular file")
            header = handle.read(100)
    except OSError as exc:
        raise _problem("unreadable", f"cannot read it: {exc.strerror or exc}") from None
    if not header:
        wal = _size(path.with_name(path.name + "-wal"))
        if wal:
            raise _problem("corrupt", f"the main file is empty but its -wal holds {wal} bytes")
        raise _problem("empty", "empty file (0 bytes)")
    if not header.startswith(HEADER):
        raise _problem("not_sqlite", "not an SQLite database (no SQLite header)")
    if len(header) < 100:
        raise _problem("corrupt", f"truncated: {len(header)} bytes, shorter than SQLite's header")
    return header


def classify(exc: sqlite3.Error) -> str:
    """The status of a file SQLite refused: ``locked``, ``hot_journal``, ``unreadable`` or ``corrupt``."""
    text = str(exc).lower()
    code = getattr(exc, "sqlite_errorcode", None)
    if "locked" in text or "busy" in text or code in (5, 6):
        return "locked"
    if code == 776 or "readonly" in text or "read-only" in text:  # SQLITE_READONLY_ROLLBACK
        return "hot_journal"
    if "unable to open" in text or "authorization" in text or "disk i/o" in text:
        return "unreadable"
    return "corrupt"


def describe_error(exc: sqlite3.Error) -> UnreadableTenant:
    status = classify(exc)
    return _problem(status, f"SQLite: {exc}")


def readonly_uri(path: Path, header: bytes) -> str | None:
    """The URI that opens ``path`` without writing anything, or None when only a private copy can
    (a WAL database whose ``-wal`` has content but which has no ``-shm``)."""
    base = path.absolute().as_uri()  # no realpath: one syscall fewer per folder level
    wal_mode = header[18] == 2 or header[19] == 2
    wal = _size(path.with_name(path.name + "-wal"))
    if not wal_mode and not wal:
        return f"{base}?mode=ro"
    if not wal:
        return f"{base}?immutable=1"  # every committed page is in the main file
    if _size(path.with_name(path.name + "-shm")) is not None:
        return f"{base}?mode=ro&readonly_shm=1"
    return None


@contextmanager
def open_readonly(path: Path, timeout: float = 1.0) -> Iterator[sqlite3.Connection]:
    """A connection that reads ``path`` (committed ``-wal`` content included) and writes nothing
    next to it; raises :class:`UnreadableTenant` saying why it cannot. ``timeout``: how long a
    writer's lock is waited for before the file is *locked*."""
    header = read_header(path)
    uri = readonly_uri(path, header)
    private: Path | None = None
    try:
        if uri is None:
            private = Path(tempfile.mkdtemp(prefix="tenantdb-ro-"))
            uri = _private_copy(path, private)
        with recording.harness():
            conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only = ON")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise describe_error(exc) from None
        try:
            yield conn
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise describe_error(exc) from None
    except OSError as exc:
        raise _problem("unreadable", f"cannot read it: {exc.strerror or exc}") from None
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def _private_copy(path: Path, folder: Path) -> str:
    """Copy ``path`` and its ``-wal`` into ``folder`` (plain reads) and return the copy's URI."""
    copy = folder / "tenant.db"
    shutil.copyfile(path, copy)
    shutil.copyfile(path.with_name(path.name + "-wal"), folder / "tenant.db-wal")
    return copy.as_uri()


def copy_tenant(source: Path, target: Path, timeout: float = 5.0) -> None:
    """Write a consistent copy of ``source`` to ``target`` with SQLite's backup API (committed
    ``-wal`` content included, one file, nothing written next to ``source``). Raises
    :class:`UnreadableTenant` when ``source`` cannot be read."""
    from pytest_tenantdb import database

    with open_readonly(source, timeout) as conn:
        try:
            database.backup_to(conn, target, timeout)
        except sqlite3.Error as exc:
            raise describe_error(exc) from None


def copy_bytes(source: Path, target: Path) -> None:
    """Copy a file that is not a readable database (empty, not SQLite, corrupt) as it is, with its
    ``-wal``: the fleet migrator then reports it as the tenant it is."""
    shutil.copyfile(source, target)
    wal = source.with_name(source.name + "-wal")
    if wal.is_file() and not wal.is_symlink():
        shutil.copyfile(wal, target.with_name(target.name + "-wal"))


@dataclass(frozen=True)
class Copied:
    """One tenant copied out of the folder: its id, the original file and the copy."""

    tenant: str
    source: Path
    copy: Path
    how: str  # "backup" (SQLite's backup API) or "bytes" (a file SQLite cannot read, as it is)


def copy_directory(
    folder: Path, pattern: str, target: Path, *, timeout: float = 5.0
) -> tuple[list[Copied], list[FileProblem]]:
    """Copy every tenant file of ``folder`` matching ``pattern`` into ``target`` (new or empty).

    A readable database is copied with SQLite's backup API (a consistent copy, committed ``-wal``
    content included). A file SQLite cannot read as a database (empty, not SQLite, corrupted, a
    hot ``-journal`` next to it) is copied byte for byte with its side files, so the fleet migrator
    reports it as the tenant it is. Files that cannot be copied at all (unreadable, locked,
    symbolic links, a name that is no safe tenant id, two files with one id) are returned as
    problems. One tenant is open at a time. ``folder`` is only read.
    """
    from pytest_tenantdb.errors import ConfigError, TenantIdError
    from pytest_tenantdb.fleet.fleet import validate_tenant_id

    listing = list_tenant_files(folder, pattern)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target}: the copies need a new or empty folder; name another one")
    if target.resolve() == folder.resolve() or target.resolve().is_relative_to(folder.resolve()):
        raise ConfigError(f"{target}: copies cannot go inside the folder of originals {folder}")
    target.mkdir(parents=True, exist_ok=True)
    copied: list[Copied] = []
    problems = list(listing.problems)
    seen: set[str] = set()
    for path in listing.files:
        tenant = tenant_id_of(path)
        try:
            validate_tenant_id(tenant)
        except TenantIdError as exc:
            problems.append(FileProblem(path.name, path, "unsafe_name", f"{exc}; rename the file"))
            continue
        if tenant in seen:
            problems.append(
                FileProblem(
                    path.name, path, "duplicate", f"another file has the tenant id {tenant!r}; rename one"
                )
            )
            continue
        seen.add(tenant)
        copy = target / f"{tenant}.sqlite3"
        try:
            copy_tenant(path, copy, timeout)
            copied.append(Copied(tenant, path, copy, "backup"))
        except UnreadableTenant as exc:
            if exc.status in ("unreadable", "locked"):
                problems.append(FileProblem(path.name, path, exc.status, exc.detail))
                continue
            try:
                copy_bytes(path, copy)
                journal = path.with_name(path.name + "-journal")
                if exc.status == "hot_journal" and journal.is_file():
                    shutil.copyfile(journal, copy.with_name(copy.name + "-journal"))
            except OSError as err:
                problems.append(
                    FileProblem(path.name, path, "unreadable", f"cannot read it: {err.strerror or err}")
                )
                continue
            copied.append(Copied(tenant, path, copy, "bytes"))
    problems.sort(key=lambda p: p.name)
    return copied, problems
