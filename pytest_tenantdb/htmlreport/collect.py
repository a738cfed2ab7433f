"""``--tenantdb-report FILE``: the fleet migrations of a pytest run, written as one HTML page
when the session ends.

Each :class:`FleetReport` a ``tenant_fleet`` / ``tenant_db`` fleet returns is kept with the test
it came from. Under xdist every worker turns its reports into sections and hands them to the
controller (``workeroutput``, as JSON), which writes the one file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_tenantdb.htmlreport.model import ReportData, Section, from_fleet_report
from pytest_tenantdb.htmlreport.render import write_html

if TYPE_CHECKING:
    from pytest_tenantdb.fleet.report import FleetReport

_WORKER_KEY = "tenantdb_html_sections"


class ReportCollector:
    """A pytest plugin object: collects the run's fleet reports, writes the page at the end."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reports: list[tuple[str, FleetReport]] = []
        self.received: list[Section] = []  # from xdist workers
        self.written: Path | None = None
        self.error: str | None = None

    def add(self, nodeid: str, report: FleetReport) -> None:
        """Keep ``report``, made by the test ``nodeid``."""
        self.reports.append((nodeid, report))

    def sections(self) -> list[Section]:
        """This process' reports and the workers', ordered by test (then in the order run)."""
        made: list[Section] = []
        seen: dict[str, int] = {}
        for nodeid, report in self.reports:
            seen[nodeid] = seen.get(nodeid, 0) + 1
            name = nodeid.rpartition("::")[2] or nodeid
            title = name if seen[nodeid] == 1 else f"{name} (migration {seen[nodeid]})"
            made.append(from_fleet_report(report, title, source=nodeid))
        return sorted(made + self.received, key=lambda s: s.source)  # stable: run order within a test

    def data(self, exitstatus: int | str) -> ReportData:
        sections = tuple(self.sections())
        tenants = sum(sum(c for _, c in s.totals) for s in sections)
        failed = sum(dict(s.totals).get("failed", 0) for s in sections)
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        subtitle = (
            f"pytest run, {when}: {len(sections)} fleet migration{'s' if len(sections) != 1 else ''}, "
            f"{tenants:,} tenants, {failed:,} failed; pytest exit status {exitstatus}"
        )
        return ReportData(
            "tenantdb fleet report",
            sections,
            subtitle,
            empty="No fleet was migrated in this run (tenant_fleet(...).migrate() records one).",
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int | pytest.ExitCode) -> None:
        workeroutput = getattr(session.config, "workeroutput", None)
        if workeroutput is not None:  # an xdist worker: the controller writes the file
            workeroutput[_WORKER_KEY] = json.dumps([s.to_dict() for s in self.sections()])
            return
        status = exitstatus.name if isinstance(exitstatus, pytest.ExitCode) else exitstatus
        try:
            self.written = write_html(self.path, self.data(status))
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        text = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
        if text:
            self.received += [Section.from_dict(s) for s in json.loads(text)]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written is not None:
            terminalreporter.write_line(f"tenantdb report: {self.written}")
        elif self.error is not None:
            terminalreporter.write_line(
                f"tenantdb report: could not write {self.path}: {self.error}", red=True
            )
