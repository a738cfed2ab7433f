"""The HTML report: a neutral data model (model.py), one self-contained page (render.py), and
the pytest side of ``--tenantdb-report FILE`` (collect.py).

Loading this package imports nothing heavy (no rich, sqlglot, faker, hypothesis, sqlite3).
"""

from __future__ import annotations

from pytest_tenantdb.htmlreport.model import (
    Bar,
    Breakdown,
    Group,
    Histogram,
    ReportData,
    Section,
    from_fleet_report,
    from_scan_result,
)
from pytest_tenantdb.htmlreport.render import render_html, write_html

__all__ = [
    "Bar",
    "Breakdown",
    "Group",
    "Histogram",
    "ReportData",
    "Section",
    "from_fleet_report",
    "from_scan_result",
    "render_html",
    "write_html",
]
