"""``tenantdb scan``: what a folder of real tenant files holds, read without writing a byte.

For each tenant: the version it records (the project's version store), then its schema against
the template of that version. The comparison is cheap first: a hash of ``sqlite_master`` (type,
name, table and SQL text of every object, sorted; the version stores' own tables left out)
against the template's hash. Only when the hashes differ is the tenant introspected
(:class:`~pytest_tenantdb.schema.Schema`) and compared (:class:`~pytest_tenantdb.schema.SchemaDiff`),
so a fleet without drift costs one small query per tenant. Drifted tenants are grouped by their
identical diff: ``148 tenants at version 9: missing column runs.priority``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_tenantdb.errors import TenantDatabaseError
from pytest_tenantdb.fleet.directory import (
    PROBLEMS,
    FileProblem,
    UnreadableTenant,
    describe_error,
    list_tenant_files,
    open_readonly,
    tenant_id_of,
)
from pytest_tenantdb.versioning import TABLES

if TYPE_CHECKING:
    from pytest_tenantdb.fleet.templates import TemplateCache
    from pytest_tenantdb.schema import Change, Schema

#: Every status a scanned file can have, in the order reports list them.
STATUSES = ("ok", "cosmetic", "drift", "unknown_version", *PROBLEMS)
#: Statuses that make ``tenantdb scan`` exit 1 (under ``--compare exact`` a cosmetic difference is ``drift``).
BAD = frozenset({"drift", "unknown_version", *PROBLEMS})

_MASTER = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
    f"AND tbl_name NOT IN ({', '.join(repr(t) for t in TABLES)}) ORDER BY type, name"
)
_WORDS = {"dropped": "missing", "added": "extra", "changed": "changed"}


def fingerprint(conn: sqlite3.Connection) -> str:
    """A hash of the schema's SQL text as ``sqlite_master`` holds it (sorted; the version
    stores' bookkeeping tables and SQLite's internal objects left out)."""
    digest = hashlib.sha256()
    for row in conn.execute(_MASTER):
        digest.update("\x1f".join(str(v) for v in row).encode("utf-8", "surrogatepass"))
        digest.update(b"\x1e")
    return digest.hexdigest()


def describe_change(change: Change) -> str:
    """A change from the template to a tenant, said from the template's side: ``missing column
    runs.priority``, ``extra index ix_x``, ``changed column t.c: notnull False -> True``."""
    text = f"{_WORDS.get(change.kind, change.kind)} {change.object}"
    return text + (f": {change.detail}" if change.detail else "")


@dataclass(frozen=True)
class TenantScan:
    """One file of the folder: ``status`` (see ``STATUSES``), the ``version`` it records (None
    when unreadable), ``changes`` from its version's template, and ``detail`` for a problem."""

    tenant: str
    path: str
    status: str
    version: int | None = None
    changes: tuple[str, ...] = ()
    detail: str = ""

    def describe(self) -> str:
        at = f" at version {self.version}" if self.version is not None else ""
        text = f"{self.tenant}: {self.status}{at}"
        if self.detail:
            text += f": {self.detail}"
        return text + "".join(f"\n    {c}" for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "path": self.path,
            "status": self.status,
            "version": self.version,
            "changes": list(self.changes),
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DriftGroup:
    """Tenants at one version whose schemas differ from its template in exactly the same way."""

    version: int
    changes: tuple[str, ...]
    tenants: tuple[str, ...]
    cosmetic: bool = False

    def headline(self) -> str:
        count = len(self.tenants)
        what = "; ".join(self.changes)
        return f"{count} tenant{'s' if count != 1 else ''} at version {self.version}: {what}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "count": len(self.tenants),
            "changes": list(self.changes),
            "cosmetic": self.cosmetic,
            "tenants": list(self.tenants),
        }


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan_directory` found: one :class:`TenantScan` per file (by name), the
    migration history's ``head``, and ``ignored`` entries (not matching the pattern, side files)."""

    folder: str
    pattern: str
    head: int
    tenants: tuple[TenantScan, ...]
    ignored: int = 0
    seconds: float = 0.0
    compare: str = "semantic"
    introspected: int = field(default=0, compare=False)

    def __len__(self) -> int:
        return len(self.tenants)

    def with_status(self, *statuses: str) -> list[TenantScan]:
        return [t for t in self.tenants if t.status in statuses]

    def versions(self) -> Counter[int]:
        """The versions histogram: how many tenants record each version (readable ones)."""
        return Counter(t.version for t in self.tenants if t.version is not None)

    def totals(self) -> Counter[str]:
        """How many files have each status (every status present, zeros included)."""
        counts = Counter({status: 0 for status in STATUSES})
        counts.update(t.status for t in self.tenants)
        return counts

    def drift_groups(self) -> list[DriftGroup]:
        """Drifted (and cosmetic) tenants grouped by version and identical changes, biggest first."""
        groups: dict[tuple[int, tuple[str, ...], bool], list[str]] = {}
        for t in self.tenants:
            if t.status in ("drift", "cosmetic") and t.version is not None:
                groups.setdefault((t.version, t.changes, t.status == "cosmetic"), []).append(t.tenant)
        found = [DriftGroup(v, c, tuple(ids), cos) for (v, c, cos), ids in groups.items()]
        return sorted(found, key=lambda g: (g.cosmetic, -len(g.tenants), g.version, g.changes))

    def problems(self) -> list[TenantScan]:
        """Files that could not be compared: unknown versions and unreadable files."""
        return [t for t in self.tenants if t.status not in ("ok", "drift", "cosmetic")]

    @property
    def bad(self) -> list[TenantScan]:
        """The tenants that make ``tenantdb scan`` exit 1."""
        return [t for t in self.tenants if t.status in BAD]

    @property
    def ok(self) -> bool:
        return not self.bad

    def summary(self, *, limit: int = 20) -> str:
        """The report as text: totals, versions histogram, drift groups, problems."""
        totals = self.totals()
        lines = [
            f"{self.folder}: {len(self)} tenant file(s) matching {self.pattern} scanned in "
            f"{self.seconds:.2f}s (head is version {self.head}; {self.ignored} other entries ignored)",
            "status: " + ", ".join(f"{s} {n}" for s, n in totals.items() if n) if len(self) else "status: -",
            "versions: " + (", ".join(f"{v}: {n}" for v, n in sorted(self.versions().items())) or "-"),
        ]
        groups = self.drift_groups()
        if groups:
            lines.append("drift (tenants grouped by identical difference from their version's template):")
            for group in groups[:limit]:
                tag = " (cosmetic)" if group.cosmetic else ""
                lines.append(f"  {group.headline()}{tag}")
                shown = ", ".join(group.tenants[:5]) + (", ..." if len(group.tenants) > 5 else "")
                lines.append(f"    e.g. {shown}")
            if len(groups) > limit:
                lines.append(f"  ... and {len(groups) - limit} more groups (--format json lists all)")
        problems = self.problems()
        if problems:
            lines.append("not compared:")
            for t in problems[:limit]:
                lines.append(f"  {t.describe()}")
            if len(problems) > limit:
                lines.append(f"  ... and {len(problems) - limit} more (--format json lists all)")
        lines.append(
            "result: " + ("clean" if self.ok else f"{len(self.bad)} tenant(s) drifted or could not be read")
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: the data a report (text, JSON, HTML) renders."""
        return {
            "folder": self.folder,
            "pattern": self.pattern,
            "head": self.head,
            "compare": self.compare,
            "seconds": round(self.seconds, 4),
            "count": len(self),
            "ignored": self.ignored,
            "introspected": self.introspected,
            "ok": self.ok,
            "totals": dict(self.totals()),
            "versions": {str(v): n for v, n in sorted(self.versions().items())},
            "drift_groups": [g.to_dict() for g in self.drift_groups()],
            "tenants": [t.to_dict() for t in self.tenants],
        }


class Scanner:
    """Scans tenant files against the templates of ``templates`` (built on demand, cached)."""

    def __init__(self, templates: TemplateCache, *, compare: str = "semantic", timeout: float = 1.0) -> None:
        self.templates = templates
        self.store = templates.store
        self.migrations = templates.migrations
        self.compare = compare
        self.timeout = timeout
        self.known = frozenset((0, *self.migrations.versions))
        self._fingerprints: dict[int, str] = {}
        self._schemas: dict[int, Schema] = {}
        self.introspected = 0

    def template(self, version: int) -> tuple[str, Schema | None]:
        """The fingerprint of ``version``'s template (computed once) and its schema if already read."""
        if version not in self._fingerprints:
            path = self.templates.schema_template(version)
            with open_readonly(path) as conn:
                self._fingerprints[version] = fingerprint(conn)
        return self._fingerprints[version], self._schemas.get(version)

    def _template_schema(self, version: int) -> Schema:
        if version not in self._schemas:
            from pytest_tenantdb.schema import Schema

            with open_readonly(self.templates.schema_template(version)) as conn:
                self._schemas[version] = Schema.from_connection(conn, ignore=TABLES)
        return self._schemas[version]

    def scan_file(self, path: Path) -> TenantScan:
        """One file's :class:`TenantScan`; never raises for a problem of the file's own."""
        tenant = tenant_id_of(path)
        try:
            with open_readonly(path, self.timeout) as conn:
                return self._scan(tenant, path, conn)
        except UnreadableTenant as exc:
            return TenantScan(tenant, str(path), exc.status, detail=exc.detail)

    def _scan(self, tenant: str, path: Path, conn: sqlite3.Connection) -> TenantScan:
        try:
            version = self.store.read(conn)
        except sqlite3.Error as exc:
            problem = describe_error(exc)
            return TenantScan(tenant, str(path), problem.status, detail=problem.detail)
        except TenantDatabaseError as exc:
            return TenantScan(tenant, str(path), "unknown_version", detail=str(exc))
        if version not in self.known:
            return TenantScan(
                tenant,
                str(path),
                "unknown_version",
                version,
                detail=f"no step of {self.migrations.origin} has version {version} (a newer release, "
                "or another project's database?)",
            )
        try:
            expected, _ = self.template(version)
            if fingerprint(conn) == expected:
                return TenantScan(tenant, str(path), "ok", version)
            from pytest_tenantdb.schema import Schema, SchemaDiff

            self.introspected += 1
            diff = SchemaDiff.between(
                self._template_schema(version), Schema.from_connection(conn, ignore=TABLES)
            )
        except sqlite3.Error as exc:
            problem = describe_error(exc)
            return TenantScan(tenant, str(path), problem.status, version, detail=problem.detail)
        changes = tuple(describe_change(c) for c in diff.changes)
        if not changes:
            return TenantScan(tenant, str(path), "ok", version)
        status = "cosmetic" if self.compare == "semantic" and not diff.significant else "drift"
        return TenantScan(tenant, str(path), status, version, changes)


def scan_directory(
    folder: Path,
    templates: TemplateCache,
    pattern: str = "*.db",
    *,
    compare: str = "semantic",
    timeout: float = 1.0,
) -> ScanResult:
    """Scan every file of ``folder`` matching ``pattern`` (one at a time: one connection open at
    a time, whatever the folder's size). Nothing in ``folder`` is written."""
    started = time.perf_counter()
    listing = list_tenant_files(folder, pattern)
    scanner = Scanner(templates, compare=compare, timeout=timeout)
    found = [scanner.scan_file(path) for path in listing.files]
    found += [_from_problem(p) for p in listing.problems]
    found.sort(key=lambda t: Path(t.path).name)
    return ScanResult(
        str(folder),
        pattern,
        templates.migrations.head,
        tuple(found),
        listing.ignored,
        time.perf_counter() - started,
        compare,
        scanner.introspected,
    )


def _from_problem(problem: FileProblem) -> TenantScan:
    return TenantScan(tenant_id_of(problem.path), str(problem.path), problem.status, detail=problem.detail)
