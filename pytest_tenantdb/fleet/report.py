"""What a fleet migration did, per tenant and in totals."""

from __future__ import annotations

import re
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
    code: str | None = None

    def describe(self) -> str:
        """One paragraph a person can act on: tenant, step, statement (or Python line), error."""
        if self.status != "failed":
            return f"{self.tenant}: {self.status} {self.start} -> {self.end}"
        where = f" at step {self.step} ({self.location})" if self.step else ""
        return f"{self.tenant}: failed{where}: {self.error}" + self._evidence()

    def _evidence(self) -> str:
        """The Python line of the step that failed and / or the SQL statement, indented."""
        lines = []
        if self.code:
            lines.append(f"> {self.code}")
        if self.statement:
            lines.append(("SQL: " if self.code else "") + self.statement)
        return "".join("\n    " + line.replace("\n", "\n    ") for line in lines)


#: How many tenant ids a group of failures names before ``... (+N)``.
GROUP_IDS = 3
#: ``saferepr``'s default size in pytest's assertion messages: a longer repr is cut in the middle.
REPR_SIZE = 240
_NUMBER = re.compile(r"\b\d+\b")


@dataclass(frozen=True)
class FailureGroup:
    """Tenants that failed the same way: the same step with the same error (told apart from
    tenant-specific parts: the tenant's file and id, numbers such as versions)."""

    step: str | None
    error: str
    outcomes: tuple[TenantOutcome, ...]

    @property
    def first(self) -> TenantOutcome:
        return self.outcomes[0]

    @property
    def tenants(self) -> list[str]:
        return [o.tenant for o in self.outcomes]

    def tenants_text(self, shown: int = GROUP_IDS) -> str:
        """``3 tenants: t003, t017, t042`` or ``16 tenants: t003, t017, t042, ... (+13)``."""
        count = len(self.outcomes)
        names = ", ".join(self.tenants[:shown])
        more = f", ... (+{count - shown})" if count > shown else ""
        return f"{count} tenant{'s' if count != 1 else ''}: {names}{more}"

    def headline(self, location: bool = True) -> str:
        """``step 0007_add_priority (file:3): <error> -- 16 tenants: t003, t017, t042, ... (+13)``."""
        first = self.first
        if self.step:
            where = f" ({first.location})" if location and first.location else ""
            what = f"step {self.step}{where}"
        else:
            what = "before any step"
        return f"{what}: {self.error} -- {self.tenants_text()}"

    def describe(self) -> str:
        """The headline, then the Python line and / or statement the first tenant failed at."""
        return self.headline() + self.first._evidence()


def _normalised(outcome: TenantOutcome) -> str:
    """The error with what differs from tenant to tenant taken out (file, id, numbers)."""
    text = (outcome.error or "").replace(outcome.path, "<file>")
    text = text.replace(outcome.tenant, "<tenant>")
    return _NUMBER.sub("<n>", text)


def _shown(outcome: TenantOutcome, many: bool) -> str:
    """The error as a group shows it: the tenant's own file and id are not the group's."""
    text = outcome.error or "(no error message)"
    if many:
        text = text.replace(outcome.path, "<tenant file>").replace(outcome.tenant, "<tenant>")
    return text


def group_failures(outcomes: tuple[TenantOutcome, ...] | list[TenantOutcome]) -> list[FailureGroup]:
    """Failed outcomes grouped by (step, error), the largest group first (ties: fleet order)."""
    groups: dict[tuple[str | None, str], list[TenantOutcome]] = {}
    for outcome in outcomes:
        if outcome.status == "failed":
            groups.setdefault((outcome.step, _normalised(outcome)), []).append(outcome)
    made = [
        FailureGroup(step, _shown(members[0], len(members) > 1), tuple(members))
        for (step, _), members in groups.items()
    ]
    return sorted(made, key=lambda g: -len(g.outcomes))  # stable: fleet order among equals


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

    def failure_groups(self) -> list[FailureGroup]:
        """The failures grouped by (step, error), with counts and the tenants, largest first."""
        return group_failures(self.outcomes)

    def raise_on_failure(self) -> None:
        if self.failed:
            raise FleetMigrationError(self.summary(failures=10))

    def headline(self) -> str:
        totals = self.totals()
        return (
            f"{len(self)} tenants -> version {self.target}: {totals['migrated']} migrated, "
            f"{totals['current']} already current, {totals['failed']} failed"
            f" ({self.seconds:.2f}s, {self.workers} worker{'s' if self.workers != 1 else ''})"
        )

    def failures_text(self, failures: int = 5) -> str:
        """The first ``failures`` groups of failures, each once with its count and first tenants."""
        groups = self.failure_groups()
        lines = [g.describe() for g in groups[:failures]]
        if len(groups) > failures:
            rest = groups[failures:]
            tenants = sum(len(g.outcomes) for g in rest)
            lines.append(
                f"... and {len(rest)} more kind{'s' if len(rest) != 1 else ''} of failure "
                f"({tenants} tenant{'s' if tenants != 1 else ''})"
            )
        return "\n".join(lines)

    def summary(self, failures: int = 5) -> str:
        """The totals, then each kind of failure once (step, error, how many tenants, which)."""
        return "\n".join(filter(None, [self.headline(), self.failures_text(failures)]))

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        """Short, for ``assert report.ok, report`` (pytest shows the repr, cut past 240 characters):
        the totals and the kinds of failure, as many as fit."""
        totals = self.totals()
        text = (
            f"<FleetReport {len(self)} tenants -> version {self.target}: {totals['migrated']} migrated, "
            f"{totals['current']} current, {totals['failed']} failed"
        )
        groups = self.failure_groups()
        for index, group in enumerate(groups):
            line = "\n" + group.headline(location=False)
            left = len(groups) - index - 1
            room = REPR_SIZE - 1 - len(text) - (len(_more(left)) if left else 0)
            if index == 0:
                line = _cut(line, group, room)
            elif len(line) > room:
                text += _more(left + 1)
                break
            text += line
        return text + ">"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "seconds": self.seconds,
            "workers": self.workers,
            "totals": self.totals(),
            "tenants": [asdict(o) for o in self.outcomes],
        }


def _cut(line: str, group: FailureGroup, room: int) -> str:
    """``line`` with its error shortened so that it fits in ``room`` characters."""
    tail = f" -- {group.tenants_text()}"
    head = line[: len(line) - len(tail)]
    keep = max(40, room - len(tail) - 3)
    return (head[:keep] + "..." + tail) if len(head) > keep else line


def _more(kinds: int) -> str:
    return f"\n(+{kinds} more kind{'s' if kinds != 1 else ''} of failure; print(report) for all)"
