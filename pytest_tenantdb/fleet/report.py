"""What a fleet migration did, per tenant and in totals."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_tenantdb.errors import TenantDBError

STATUSES = ("migrated", "current", "failed")


@dataclass(frozen=True)
class TenantOutcome:
    """The result for one tenant: ``migrated``, ``current`` (nothing to do) or ``failed``."""

    tenant: str
    path: str
    status: str
    start: int
    end: int
    applied: tuple[str, ...] = ()
    step: str | None = None
    statement: str | None = None
    location: str | None = None
    error: str | None = None
    recovered: bool = False
    seconds: float = 0.0

    def describe(self) -> str:
        """One paragraph a person can act on: tenant, step, statement, error."""
        if self.status != "failed":
            return f"{self.tenant}: {self.status} {self.start} -> {self.end}"
        where = f" at step {self.step} ({self.location})" if self.step else ""
        text = f"{self.tenant}: failed{where}: {self.error}"
        if self.statement:
            text += "\n    " + self.statement.replace("\n", "\n    ")
        return text


class FleetMigrationError(TenantDBError):
    """Raised by :meth:`FleetReport.raise_on_failure` when any tenant failed."""


@dataclass(frozen=True)
class FleetReport:
    """Outcomes of :meth:`Fleet.migrate`, in tenant order."""

    target: int
    outcomes: tuple[TenantOutcome, ...]
    seconds: float = 0.0
    workers: int = 1
    label: str = field(default="", compare=False)

    def __len__(self) -> int:
        return len(self.outcomes)

    def with_status(self, status: str) -> list[TenantOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def migrated(self) -> list[TenantOutcome]:
        return self.with_status("migrated")

    @property
    def failed(self) -> list[TenantOutcome]:
        return self.with_status("failed")

    @property
    def current(self) -> list[TenantOutcome]:
        return self.with_status("current")

    @property
    def recovered(self) -> list[TenantOutcome]:
        """Tenants whose backup from an interrupted run was restored before migrating."""
        return [o for o in self.outcomes if o.recovered]

    @property
    def ok(self) -> bool:
        return not self.failed

    def totals(self) -> dict[str, int]:
        counts = Counter(o.status for o in self.outcomes)
        return {status: counts.get(status, 0) for status in STATUSES}

    def by_start_version(self) -> dict[int, dict[str, int]]:
        """Per version the tenants started at: how many migrated / were current / failed."""
        table: dict[int, Counter[str]] = {}
        for o in self.outcomes:
            table.setdefault(o.start, Counter())[o.status] += 1
        return {v: {s: c.get(s, 0) for s in STATUSES} for v, c in sorted(table.items())}

    def raise_on_failure(self) -> None:
        if self.failed:
            raise FleetMigrationError(self.summary(failures=10))

    def summary(self, failures: int = 5) -> str:
        totals = self.totals()
        head = (
            f"{len(self)} tenants -> version {self.target}: {totals['migrated']} migrated, "
            f"{totals['current']} already current, {totals['failed']} failed"
            f" ({self.seconds:.2f}s, {self.workers} worker{'s' if self.workers != 1 else ''})"
        )
        lines = [head] + [o.describe() for o in self.failed[:failures]]
        if len(self.failed) > failures:
            lines.append(f"... and {len(self.failed) - failures} more failed tenants")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "seconds": self.seconds,
            "workers": self.workers,
            "totals": self.totals(),
            "tenants": [asdict(o) for o in self.outcomes],
        }
