"""Fleets of tenant databases at mixed schema versions, cloned from cached templates."""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_tenantdb import database, recording
from pytest_tenantdb.errors import ConfigError, TenantDatabaseError, TenantIdError
from pytest_tenantdb.fleet.migrator import migrate_many, recover_many
from pytest_tenantdb.fleet.report import FleetReport
from pytest_tenantdb.fleet.seeding import SIZE_ROWS, ColumnGenerator, Seeder
from pytest_tenantdb.fleet.templates import TemplateCache
from pytest_tenantdb.migrations import MigrationSet
from pytest_tenantdb.progress import Progress, counting
from pytest_tenantdb.schema import Schema
from pytest_tenantdb.versioning import VersionStore

if TYPE_CHECKING:
    from pytest_tenantdb.fleet.directory import FileProblem
    from pytest_tenantdb.fleet.query import QueryResult, QueryRow

_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*")
MAX_TENANT_ID = 100
SNAPSHOT_SUFFIXES = (".sqlite3", ".sqlite", ".db")

#: ``{"head": 0.7, "head-1": 0.3}`` (shares), ``{3: 100, 4: 400}`` (counts) or ``[3, 4]`` (even).
VersionMix = Mapping[int | str, float] | Sequence[int | str] | int | str
SizeMix = Mapping[str, float] | Sequence[str] | str

K = TypeVar("K")

DEFAULT_SIZES: dict[str, float] = {"empty": 0.1, "small": 0.7, "large": 0.2}


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` if it is safe as a file name, else raise :class:`TenantIdError`."""
    if not isinstance(tenant_id, str):
        raise TenantIdError(f"tenant id must be a string, got {type(tenant_id).__name__} {tenant_id!r}")
    if len(tenant_id) > MAX_TENANT_ID:
        raise TenantIdError(
            f"tenant id {tenant_id[:20]!r}... is {len(tenant_id)} characters; at most {MAX_TENANT_ID} allowed."
        )
    if ".." in tenant_id or "/" in tenant_id or "\\" in tenant_id or not _TENANT_ID.fullmatch(tenant_id):
        raise TenantIdError(
            f"unsafe tenant id {tenant_id!r}: use letters, digits and . _ - @ + only, start with a "
            "letter or digit, and no '..' or path separators (it becomes a file name)."
        )
    return tenant_id


@dataclass(frozen=True)
class Tenant:
    """One tenant: its id, its SQLite file, and the version and size it was created with."""

    id: str
    path: Path
    version: int
    size: str = "empty"
    source: Path | None = None  # the original a copy was made from (from_directory)

    def __post_init__(self) -> None:
        recording.tenant_created(self.path)  # --tenantdb-record: connections on it are the app's

    def connect(self, **kwargs: Any) -> sqlite3.Connection:
        """A plain ``sqlite3`` connection to the tenant's file, as the app would open it (what
        runs on it is recorded by ``--tenantdb-record``)."""
        if not self.path.is_file():
            raise TenantDatabaseError(f"{self.path}: tenant {self.id} has no database file.")
        with recording.harness():  # opened here, handed to the recorder just below
            conn: sqlite3.Connection = sqlite3.connect(self.path, **kwargs)
        recording.tenant_connection(conn)
        return conn

    def current_version(self, store: VersionStore | None = None) -> int:
        """The version recorded in the file now (``user_version`` unless ``store`` says otherwise)."""
        from pytest_tenantdb.versioning import UserVersionStore

        conn = database.connect(self.path)
        try:
            return (store or UserVersionStore()).read(conn)
        finally:
            conn.close()

    def schema(self) -> Schema:
        """The tenant's schema, introspected from its file."""
        return Schema.from_path(self.path)


def allocate(count: int | None, mix: Mapping[K, float], what: str) -> list[K]:
    """Split ``count`` items over the keys of ``mix``: ints are counts, floats are shares."""
    if not mix:
        raise ConfigError(f"{what} must not be empty")
    values = list(mix.values())
    if any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in values):
        raise ConfigError(f"{what} values must be non-negative counts or shares, got {dict(mix)!r}")
    if all(isinstance(v, int) for v in values):
        total = int(sum(values))
        if count is not None and count != total:
            raise ConfigError(f"{what} counts add up to {total} but count={count}; make them agree")
        return [key for key, n in mix.items() for _ in range(int(n))]
    if count is None:
        raise ConfigError(f"{what} gives shares, so count= is needed too")
    weight = float(sum(values))
    if weight <= 0:
        raise ConfigError(f"{what} shares add up to 0")
    exact = {key: count * v / weight for key, v in mix.items()}
    counts = {key: int(x) for key, x in exact.items()}
    by_remainder = sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)
    for key in by_remainder[: count - sum(counts.values())]:
        counts[key] += 1
    return [key for key, n in counts.items() for _ in range(n)]


def _as_mapping(mix: object, what: str) -> Mapping[object, float]:
    if isinstance(mix, Mapping):
        return mix
    if isinstance(mix, str | int) and not isinstance(mix, bool):
        return {mix: 1.0}
    if isinstance(mix, Iterable):
        return dict.fromkeys(mix, 1.0)
    raise ConfigError(f"{what} must be a mapping, a list or a single value, got {mix!r}")


class Fleet(Sequence[Tenant]):
    """Tenant databases of one test, all from the same migration set."""

    def __init__(
        self,
        tenants: Sequence[Tenant],
        migrations: MigrationSet,
        store: VersionStore,
        *,
        workers: int = 1,
        timeout: float = 5.0,
        on_report: Callable[[FleetReport], None] | None = None,
        skipped: Sequence[FileProblem] = (),
        progress: Progress | None = None,
    ) -> None:
        self._tenants = tuple(tenants)
        #: Files of the folder a fleet was copied from that are not in it (from_directory).
        self.skipped = tuple(skipped)
        self._by_id = {t.id: t for t in self._tenants}
        self.migrations = migrations
        self.store = store
        self.workers = workers
        self.timeout = timeout
        self._on_report = on_report
        self.progress = progress

    def __getitem__(self, index: int) -> Tenant:  # type: ignore[override]
        return self._tenants[index]

    def __len__(self) -> int:
        return len(self._tenants)

    def __iter__(self) -> Iterator[Tenant]:
        return iter(self._tenants)

    def __repr__(self) -> str:
        return f"<Fleet of {len(self)} tenants, versions {dict(sorted(self.created_versions().items()))}>"

    @classmethod
    def from_directory(
        cls,
        path: Path | str,
        migrations: MigrationSet,
        *,
        workdir: Path | str,
        pattern: str = "*.db",
        store: VersionStore | None = None,
        workers: int = 1,
        timeout: float = 5.0,
    ) -> Fleet:
        """A fleet of copies of the real tenant files in ``path`` matching ``pattern``, written to
        ``workdir`` (new or empty). The originals are only read (see :mod:`.directory`); files that
        cannot be copied are listed in ``fleet.skipped``."""
        from pytest_tenantdb.versioning import version_store

        store = store if store is not None else version_store("auto", migrations)
        tenants, skipped = _copies(Path(path), pattern, Path(workdir), store, timeout)
        return cls(tenants, migrations, store, workers=workers, timeout=timeout, skipped=skipped)

    def query(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] = (),
        *,
        reduce: Callable[[list[QueryRow]], Any] | None = None,
        batch_size: int | None = None,
    ) -> QueryResult:
        """Run the read-only ``sql`` on every tenant (ATTACHed in batches), map-reduce style:
        each tenant's rows tagged with its id, ``reduce`` over all of them; a tenant it fails on
        (a missing table, a corrupted file) is reported in ``result.failed``, not raised."""
        from pytest_tenantdb.fleet.query import query_files

        return query_files(
            [(t.id, t.path) for t in self._tenants],
            sql,
            params,
            reduce=reduce,
            batch_size=batch_size,
            timeout=self.timeout,
        )

    def tenant(self, tenant_id: str) -> Tenant:
        """The tenant with ``tenant_id``."""
        try:
            return self._by_id[tenant_id]
        except KeyError:
            raise KeyError(f"no tenant {tenant_id!r} in this fleet") from None

    def created_versions(self) -> Counter[int]:
        """How many tenants were created at each version."""
        return Counter(t.version for t in self._tenants)

    def versions(self) -> Counter[int]:
        """How many tenants are at each version now (read from the files)."""
        return Counter(t.current_version(self.store) for t in self._tenants)

    def recover(self, *, lock_timeout: float | None = None) -> list[str]:
        """Undo what an interrupted migration left (backups restored in place, spares dropped);
        return the tenants it touched. Waits for a running migration of the fleet first."""
        undone = set(recover_many([t.path for t in self._tenants], self.timeout, lock_timeout))
        return [t.id for t in self._tenants if t.path in undone]

    def migrate(
        self, to: int | str | None = None, workers: int | None = None, *, lock_timeout: float | None = None
    ) -> FleetReport:
        """Bring every tenant to ``to`` (default head), step by step; failures are reported, not raised.

        One migration per fleet directory at a time: a second one waits ``lock_timeout`` seconds
        (default: the fleet's busy timeout), then raises :class:`FleetBusyError`.
        """
        target = self.migrations.head if to is None else self.migrations.resolve(to)
        workers = self.workers if workers is None else workers
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        started = time.perf_counter()
        outcomes = migrate_many(
            [(t.id, t.path) for t in self._tenants],
            self.migrations,
            target,
            self.store,
            workers,
            self.timeout,
            lock_timeout,
            progress=self.progress,
        )
        report = FleetReport(target, tuple(outcomes), time.perf_counter() - started, workers)
        if self._on_report is not None:
            self._on_report(report)
        return report


class FleetBuilder:
    """Makes fleets and single tenants in one directory from one template cache."""

    def __init__(
        self,
        directory: Path,
        templates: TemplateCache,
        *,
        seed: int = 0,
        variants: int = 2,
        workers: int = 1,
        timeout: float = 5.0,
        on_report: Callable[[FleetReport], None] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.directory = directory
        self.templates = templates
        self.seed = seed
        self.variants = variants
        self.workers = workers
        self.timeout = timeout
        self.on_report = on_report
        #: told of each tenant built and migrated (pytest_tenantdb.progress); None: nothing
        self.progress = progress
        self._fleets = 0

    @property
    def migrations(self) -> MigrationSet:
        return self.templates.migrations

    def _new_directory(self, name: str | None) -> Path:
        self._fleets += 1
        path = self.directory / (validate_tenant_id(name) if name else f"fleet-{self._fleets}")
        path.mkdir(parents=True, exist_ok=False)
        return path

    def _fleet(self, tenants: Sequence[Tenant], skipped: Sequence[FileProblem] = ()) -> Fleet:
        return Fleet(
            tenants,
            self.migrations,
            self.templates.store,
            workers=self.workers,
            timeout=self.timeout,
            on_report=self.on_report,
            skipped=skipped,
            progress=self.progress,
        )

    def from_directory(self, path: Path | str, pattern: str = "*.db", *, name: str | None = None) -> Fleet:
        """A fleet of copies of the real tenant files in ``path`` matching ``pattern`` (a glob on
        file names; sub-folders are not searched). Copies are made with SQLite's backup API
        (committed ``-wal`` content included); the originals are never written. Files that
        cannot be copied (unreadable, locked, symbolic links) are in ``fleet.skipped``."""
        folder = Path(path)
        if not folder.is_dir():
            raise ConfigError(f"tenant folder {folder} does not exist or is not a folder")
        target = self.directory / (validate_tenant_id(name) if name else f"fleet-{self._fleets + 1}")
        self._fleets += 1
        tenants, skipped = _copies(folder, pattern, target, self.templates.store, self.timeout)
        return self._fleet(tenants, skipped)

    def build(
        self,
        count: int | None = None,
        versions: VersionMix | None = None,
        *,
        sizes: SizeMix | None = None,
        seed: int | None = None,
        ids: Sequence[str] | None = None,
        generators: Mapping[str, ColumnGenerator] | None = None,
        name: str | None = None,
    ) -> Fleet:
        """A fleet of ``count`` tenants spread over ``versions`` and data ``sizes``."""
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ConfigError(f"count must be a non-negative int, got {count!r}")
        if ids is not None:
            ids = [validate_tenant_id(i) for i in ids]
            if len(set(ids)) != len(ids):
                raise TenantIdError("tenant ids must be unique; found duplicates in ids=")
            if count is None:
                count = len(ids)
            elif count != len(ids):
                raise ConfigError(f"count={count} but {len(ids)} ids given; make them agree")
        mix = _as_mapping(versions if versions is not None else "head", "versions")
        resolved: dict[int, float] = {}
        for key, share in mix.items():
            version = self.migrations.resolve(key)  # type: ignore[arg-type]
            resolved[version] = resolved.get(version, 0) + share
        wanted_versions = allocate(count, resolved, "versions")
        count = len(wanted_versions)
        size_mix = {str(k): v for k, v in _as_mapping(sizes or DEFAULT_SIZES, "sizes").items()}
        for size in size_mix:
            if size not in SIZE_ROWS:
                raise ConfigError(f"unknown size {size!r}; choose from {sorted(SIZE_ROWS)}")
        wanted_sizes = allocate(count, size_mix, "sizes")
        seed = self.seed if seed is None else seed
        rng = random.Random(seed)
        rng.shuffle(wanted_versions)
        rng.shuffle(wanted_sizes)
        seeder = Seeder(seed, generators)
        width = max(4, len(str(count)))
        ids = ids or [f"tenant-{i:0{width}d}" for i in range(1, count + 1)]
        directory = self._new_directory(name)
        sources: dict[tuple[int, str, int], Path | bytes] = {}
        tenants = []
        with counting(self.progress, "building", count) as tick:
            for tenant_id, version, size in zip(ids, wanted_versions, wanted_sizes, strict=True):
                variant = rng.randrange(self.variants) if SIZE_ROWS[size] else 0
                key = (version, size, variant)
                if key not in sources:
                    sources[key] = _source(self.templates.seeded_template(*key, seeder))
                path = directory / f"{tenant_id}.sqlite3"
                _clone(sources[key], path)
                tenants.append(Tenant(tenant_id, path, key[0], key[1]))
                tick(tenant_id)
        return self._fleet(tenants)

    __call__ = build

    def tenant(
        self,
        version: int | str = "head",
        *,
        tenant_id: str = "tenant",
        size: str = "small",
        seed: int | None = None,
        generators: Mapping[str, ColumnGenerator] | None = None,
    ) -> Tenant:
        """One tenant database at ``version`` (a fleet of one)."""
        fleet = self.build(
            1, {version: 1}, sizes={size: 1}, seed=seed, ids=[tenant_id], generators=generators
        )
        return fleet[0]

    def from_snapshots(self, source: Path | str | Sequence[Path | str], *, name: str | None = None) -> Fleet:
        """Copy real tenant snapshots (a folder of ``*.sqlite3``/``*.sqlite``/``*.db``, or files).

        The originals are never opened for writing: every test works on its own copy. The id of
        each tenant is its file name without the suffix.
        """
        if isinstance(source, str | Path):
            folder = Path(source)
            if not folder.is_dir():
                raise ConfigError(f"snapshot folder {folder} does not exist")
            files = sorted(p for p in folder.iterdir() if p.suffix in SNAPSHOT_SUFFIXES and p.is_file())
        else:
            files = [Path(p) for p in source]
        tenants = []
        ids = [validate_tenant_id(f.stem) for f in files]
        if len(set(ids)) != len(ids):
            raise TenantIdError("two snapshots have the same tenant id (file name without suffix)")
        directory = self._new_directory(name)
        for tenant_id, file in zip(ids, files, strict=True):
            if not file.is_file():
                raise ConfigError(f"snapshot {file} does not exist")
            path = directory / f"{tenant_id}.sqlite3"
            shutil.copyfile(file, path)
            wal = file.with_name(file.name + "-wal")  # committed pages not yet checkpointed
            if wal.exists():
                shutil.copyfile(wal, path.with_name(path.name + "-wal"))
            tenants.append(Tenant(tenant_id, path, _safe_version(path, self.templates.store), "snapshot"))
        return self._fleet(tenants)


#: Templates up to this size are held in memory while a fleet is cloned from them.
IN_MEMORY_TEMPLATE = 8 * 1024 * 1024


def _source(template: Path) -> Path | bytes:
    """A small template's bytes (one read instead of one per tenant), or a big one's path."""
    return template.read_bytes() if template.stat().st_size <= IN_MEMORY_TEMPLATE else template


def _clone(source: Path | bytes, target: Path) -> None:
    if isinstance(source, bytes):
        with open(target, "xb") as out:
            out.write(source)
    else:
        shutil.copyfile(source, target)


def _copies(
    folder: Path, pattern: str, target: Path, store: VersionStore, timeout: float
) -> tuple[list[Tenant], list[FileProblem]]:
    from pytest_tenantdb.fleet.directory import copy_directory

    copied, skipped = copy_directory(folder, pattern, target, timeout=timeout)
    tenants = [
        Tenant(c.tenant, c.copy, _safe_version(c.copy, store, lenient=True), "real", c.source) for c in copied
    ]
    return tenants, skipped


def _safe_version(path: Path, store: VersionStore, *, lenient: bool = False) -> int:
    """The snapshot's version, or -1 when it cannot be read (migrate() reports why). A version
    table the history cannot place raises, unless ``lenient`` (a folder of real tenants: then
    it is that tenant's outcome)."""
    try:
        conn = database.connect(path)
    except TenantDatabaseError:
        return -1
    try:
        return store.read(conn)
    except TenantDatabaseError:  # e.g. an Alembic state the history cannot place
        if not lenient:
            raise
        return -1
    except sqlite3.Error:
        return -1
    finally:
        conn.close()
