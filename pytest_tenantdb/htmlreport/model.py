"""What an HTML report shows, as plain data: the renderer knows nothing of fleets.

A :class:`ReportData` is a title and :class:`Section` s. A section holds whatever its source has:
histograms (tenants per version), breakdowns (outcomes per start version, as stacked bars),
groups of failures and of drift (a count, what happened, the first tenants), timings and notes.
``from_fleet_report`` makes a section of a :class:`FleetReport`; ``scan`` or ``rehearse`` make
theirs the same way. Everything is strings and numbers, and a report round-trips through
``to_dict`` / ``from_dict`` (JSON), which is how xdist workers hand theirs to the controller.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_tenantdb.fleet.report import FailureGroup, FleetReport
    from pytest_tenantdb.fleet.scan import ScanResult

#: How many tenant ids a group keeps (its ``count`` says how many there are in all).
GROUP_TENANTS = 20
#: How many groups of failures a fleet section keeps (the rest are counted in a note).
GROUPS = 50
#: How many of the slowest tenants the timings name.
SLOWEST = 5


@dataclass(frozen=True)
class Bar:
    """One bar of a histogram: ``count`` tenants at ``label`` (a version, a kind of file...)."""

    label: str
    count: int


@dataclass(frozen=True)
class Histogram:
    title: str
    bars: tuple[Bar, ...]


@dataclass(frozen=True)
class Breakdown:
    """Rows of counts per status, drawn as stacked bars: e.g. per start version, how many
    tenants migrated, were current, failed. ``rows`` are ``(label, counts)``, the counts in the
    order of ``statuses``."""

    title: str
    statuses: tuple[str, ...]
    rows: tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True)
class Group:
    """Tenants that share a problem: a failure (the same step and error) or drift (the same
    schema diff). ``title`` is the problem in one line (the error, ``missing column
    runs.priority``); ``where`` where it happened (``step 0007_x (migrations/0007_x.sql:3)``);
    ``lines`` the evidence shown as code (the statement, the Python line, the diff's lines);
    ``tenants`` the first tenants' ids, ``count`` how many tenants in all."""

    count: int
    title: str
    tenants: tuple[str, ...] = ()
    where: str = ""
    lines: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, count: int, lines: list[str] | tuple[str, ...], tenants: list[str] | tuple[str, ...]
    ) -> Group:
        """A group from description lines (the first is its title, the others its evidence),
        e.g. a drift group: ``Group.of(148, ["missing column runs.priority"], ids)``."""
        title = lines[0] if lines else ""
        return cls(count, title, tuple(tenants[:GROUP_TENANTS]), "", tuple(lines[1:]))


@dataclass(frozen=True)
class Section:
    """One part of a report: one fleet migration, one scan, one rehearsal.

    ``source`` says where it came from (a test's node id, a command); ``status`` is ``ok``,
    ``failed`` or ``drift`` (its badge); ``totals`` the counts of the overview table
    (``(("migrated", 84), ("current", 0), ("failed", 16))``); ``timings`` rows of
    ``(what, value)``, already formatted."""

    title: str
    status: str = "ok"
    source: str = ""
    headline: str = ""
    totals: tuple[tuple[str, int], ...] = ()
    histograms: tuple[Histogram, ...] = ()
    breakdowns: tuple[Breakdown, ...] = ()
    failures: tuple[Group, ...] = ()
    drift: tuple[Group, ...] = ()
    timings: tuple[tuple[str, str], ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Section:
        return cls(
            title=str(data["title"]),
            status=str(data.get("status", "ok")),
            source=str(data.get("source", "")),
            headline=str(data.get("headline", "")),
            totals=tuple((str(k), int(v)) for k, v in data.get("totals", ())),
            histograms=tuple(
                Histogram(str(h["title"]), tuple(Bar(str(b["label"]), int(b["count"])) for b in h["bars"]))
                for h in data.get("histograms", ())
            ),
            breakdowns=tuple(
                Breakdown(
                    str(b["title"]),
                    tuple(str(s) for s in b["statuses"]),
                    tuple((str(label), tuple(int(c) for c in counts)) for label, counts in b["rows"]),
                )
                for b in data.get("breakdowns", ())
            ),
            failures=tuple(_group(g) for g in data.get("failures", ())),
            drift=tuple(_group(g) for g in data.get("drift", ())),
            timings=tuple((str(k), str(v)) for k, v in data.get("timings", ())),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )


def _group(data: dict[str, Any]) -> Group:
    return Group(
        count=int(data["count"]),
        title=str(data["title"]),
        tenants=tuple(str(t) for t in data.get("tenants", ())),
        where=str(data.get("where", "")),
        lines=tuple(str(line) for line in data.get("lines", ())),
    )


@dataclass(frozen=True)
class ReportData:
    """A whole report: ``title``, a ``subtitle`` (what ran, when) and its sections."""

    title: str
    sections: tuple[Section, ...] = ()
    subtitle: str = ""
    empty: str = field(default="Nothing to report.", compare=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportData:
        return cls(
            title=str(data["title"]),
            sections=tuple(Section.from_dict(s) for s in data.get("sections", ())),
            subtitle=str(data.get("subtitle", "")),
            empty=str(data.get("empty", "Nothing to report.")),
        )


def _failure_group(group: FailureGroup) -> Group:
    first = group.first
    if group.step:
        where = f"step {group.step}" + (f" ({first.location})" if first.location else "")
    else:
        where = "before any step"
    lines: list[str] = []
    if first.code:
        lines.append(f"> {first.code}")
    if first.statement:
        lines.append(("SQL: " if first.code else "") + first.statement)
    return Group(len(group.outcomes), group.error, tuple(group.tenants[:GROUP_TENANTS]), where, tuple(lines))


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def fleet_timings(report: FleetReport) -> tuple[tuple[str, str], ...]:
    """The run's time, and per tenant: median, 95th percentile, the slowest tenants."""
    workers = f"{report.workers} worker{'s' if report.workers != 1 else ''}"
    rows = [("whole migration", f"{_seconds(report.seconds)} ({workers})")]
    times = sorted(o.seconds for o in report.outcomes)
    if times:
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        rows.append(("per tenant: median", _seconds(statistics.median(times))))
        rows.append(("per tenant: 95th percentile", _seconds(p95)))
        rows.append(("per tenant: total", _seconds(sum(times))))
        slowest = sorted(report.outcomes, key=lambda o: -o.seconds)[:SLOWEST]
        rows.append(("slowest tenants", ", ".join(f"{o.tenant} ({_seconds(o.seconds)})" for o in slowest)))
    return tuple(rows)


def from_fleet_report(report: FleetReport, title: str, source: str = "") -> Section:
    """A section showing one fleet migration: tenants per version before and after, outcomes by
    start version, the failures grouped by (step, error), timings."""
    totals = report.totals()
    before: dict[int, int] = {}
    after: dict[int, int] = {}
    for outcome in report.outcomes:
        before[outcome.start] = before.get(outcome.start, 0) + 1
        after[outcome.end] = after.get(outcome.end, 0) + 1
    by_start = report.by_start_version()
    statuses = tuple(totals)
    groups = report.failure_groups()
    notes: list[str] = []
    if len(groups) > GROUPS:
        rest = groups[GROUPS:]
        notes.append(
            f"{len(rest)} more kinds of failure ({sum(len(g.outcomes) for g in rest)} tenants) are not shown."
        )
    if report.recovered:
        notes.append(f"{len(report.recovered)} tenants were recovered from an interrupted run first.")
    return Section(
        title=title,
        status="ok" if report.ok else "failed",
        source=source,
        headline=report.headline(),
        totals=tuple(totals.items()),
        histograms=(
            Histogram("tenants per version before", tuple(Bar(str(v), c) for v, c in sorted(before.items()))),
            Histogram("tenants per version after", tuple(Bar(str(v), c) for v, c in sorted(after.items()))),
        ),
        breakdowns=(
            Breakdown(
                f"outcomes by start version (target {report.target})",
                statuses,
                tuple((str(v), tuple(counts[s] for s in statuses)) for v, counts in by_start.items()),
            ),
        ),
        failures=tuple(_failure_group(g) for g in groups[:GROUPS]),
        timings=fleet_timings(report),
        notes=tuple(notes),
    )


def from_scan_result(result: ScanResult, title: str, source: str = "") -> Section:
    """A section showing one ``tenantdb scan``: tenants per recorded version, files per status,
    drifted tenants grouped by identical diff, and the files that could not be compared."""
    totals = result.totals()
    drift = [
        Group.of(
            len(g.tenants),
            [f"{'cosmetic ' if g.cosmetic else ''}drift at version {g.version}", *g.changes],
            g.tenants,
        )
        for g in result.drift_groups()
    ]
    problems: dict[tuple[str, str], list[str]] = {}
    for tenant in result.problems():
        problems.setdefault((tenant.status, tenant.detail), []).append(tenant.tenant)
    failures = [
        Group(len(ids), f"{status}: {detail}" if detail else status, tuple(ids[:GROUP_TENANTS]))
        for (status, detail), ids in problems.items()
    ]
    notes = [f"{len(drift) - GROUPS} more drift groups are not shown."] if len(drift) > GROUPS else []
    return Section(
        title=title,
        status="ok" if result.ok else "failed",
        source=source,
        headline=f"{len(result)} tenant files, head {result.head}: "
        + ", ".join(f"{count} {status}" for status, count in totals.items() if count),
        totals=tuple((status, count) for status, count in totals.items() if count),
        histograms=(
            Histogram(
                "tenants per recorded version",
                tuple(Bar(str(v), c) for v, c in sorted(result.versions().items())),
            ),
        ),
        failures=tuple(failures[:GROUPS]),
        drift=tuple(drift[:GROUPS]),
        timings=(("scan", _seconds(result.seconds)),),
        notes=tuple(notes),
    )
